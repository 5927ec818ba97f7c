use jobs::prelude::*;

#[job]
async fn export_report(report_id: i64, options: String) {
    let _ = (report_id, options);
}

fn main() {}
