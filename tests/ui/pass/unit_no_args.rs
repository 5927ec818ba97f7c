use jobs::prelude::*;

#[job]
async fn nightly_cleanup() {}

#[job]
async fn explicit_unit() -> () {}

fn main() {
    let _ = NightlyCleanup {};
    let _ = ExplicitUnit {};
}
