use jobs::prelude::*;

#[job]
async fn merge(#[parent] left: u64, #[parent] right: u64) {
    let _ = (left, right);
}

fn main() {}
