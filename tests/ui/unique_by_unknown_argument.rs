use jobs::prelude::*;

#[job(unique(by = [customer]))]
async fn sync_customer(customer_id: i64, region: String) {
    let _ = (customer_id, region);
}

fn main() {}
