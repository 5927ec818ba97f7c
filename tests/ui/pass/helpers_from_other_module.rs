use jobs::prelude::*;

mod mail {
    use jobs::prelude::*;

    /// Sends the welcome mail.
    #[job(queue = "mail")]
    pub async fn send_welcome_email(user_id: i64, template: String) -> Result<(), String> {
        let _ = (user_id, template);
        Ok(())
    }
}

#[allow(dead_code)]
async fn enqueue_both_ways(client: &Client) -> jobs::Result<()> {
    let _: TypedJobId<()> = mail::send_welcome_email::enqueue(client, 42, "welcome".into()).await?;
    let _: TypedJobId<()> = mail::send_welcome_email::schedule_in(
        client,
        Duration::from_secs(60),
        42,
        "welcome".into(),
    )
    .await?;
    let _: TypedJobId<()> = mail::SendWelcomeEmail {
        user_id: 42,
        template: "welcome".into(),
    }
    .enqueue(client)
    .await?;
    Ok(())
}

fn main() {}
