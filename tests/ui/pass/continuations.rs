//! Typed results, continuations (chains, `Option` parents, untyped
//! ones), batches and transactional enqueue, as a user writes them.
use jobs::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Page {
    url: String,
    bytes: usize,
}

#[job]
async fn fetch_page(url: String) -> Result<Page, std::io::Error> {
    Ok(Page { bytes: url.len(), url })
}

#[job]
async fn count_links(#[parent] page: Page, limit: usize) -> Result<usize, String> {
    Ok(page.bytes.min(limit))
}

#[job]
async fn store_count(ctx: JobContext, #[parent] links: Option<usize>) -> anyhow::Result<()> {
    let _ = (ctx, links);
    Ok(())
}

#[job]
async fn notify(channel: String) {
    let _ = channel;
}

#[job]
async fn summarize(#[parent] pages: Vec<Page>) -> Result<usize, String> {
    Ok(pages.iter().map(|page| page.bytes).sum())
}

async fn chains(client: &Client) -> jobs::Result<()> {
    let page: TypedJobId<Page> = fetch_page::enqueue(client, "https://example.com".into()).await?;
    let links: TypedJobId<usize> = count_links::continue_after(client, page, 10).await?;
    let options = EnqueueOptions::new().continue_on(ContinueOn::Finished);
    store_count::continue_after_with(client, links, options).await?;
    notify::continue_after(client, links, "ops".into()).await?;
    let _: Option<usize> = client.storage().job_result(links).await?;

    let mut batch = Batch::new().description("pages");
    for url in ["a", "b"] {
        fetch_page::add_to_batch(&mut batch, url.into())?;
    }
    batch.then(Summarize {})?;
    let id: jobs::BatchId = client.enqueue_batch(batch).await?;
    summarize::continue_after_batch(client, id.clone()).await?;
    client.storage().cancel_batch(&id).await?;
    Ok(())
}

async fn in_transactions(pg: sqlx::PgPool, sqlite: sqlx::SqlitePool) -> jobs::Result<()> {
    let mut tx = pg.begin().await.unwrap();
    let _: TypedJobId<Page> = fetch_page::enqueue_in_tx(&mut tx, "https://example.com".into()).await?;
    notify::enqueue_in_tx_with(&mut tx, EnqueueOptions::new().queue("mail"), "ops".into()).await?;
    tx.commit().await.unwrap();
    let mut tx = sqlite.begin_with("BEGIN IMMEDIATE").await.unwrap();
    notify::enqueue_in_tx(&mut tx, "ops".into()).await?;
    tx.commit().await.unwrap();
    Ok(())
}

fn main() {
    let _ = (chains, in_transactions);
}
