use jobs::prelude::*;

fn main() {
    #[job(retries = 1)]
    async fn local_job(key: String) {
        let _ = key;
    }

    let _ = LocalJob { key: "k".into() };
}
