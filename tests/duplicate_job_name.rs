//! Two `#[job]`s with one stored name: the server refuses to start and says
//! where both are. Its own test binary, so the clash touches no other test.

use jobs::prelude::*;

mod billing {
    use jobs::prelude::*;

    /// Sends an invoice.
    #[job(name = "send")]
    pub async fn send_invoice(invoice: u64) {
        let _ = invoice;
    }
}

/// Sends a newsletter, under the same stored name by mistake.
#[job(name = "send")]
async fn send_newsletter(issue: u64) {
    let _ = issue;
}

#[tokio::test]
async fn a_duplicate_job_name_is_a_startup_error_naming_both_places() {
    let storage = Storage::connect("sqlite::memory:").await.unwrap();
    let error = match Server::builder(storage).start() {
        Ok(_) => panic!("the server must not start with two jobs named `send`"),
        Err(error) => error,
    };
    assert!(
        matches!(error, jobs::Error::DuplicateJobName { name: "send", .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains("job name `send` is registered twice"),
        "{message}"
    );
    assert_eq!(
        message.matches("tests/duplicate_job_name.rs:").count(),
        2,
        "{message}"
    );
}
