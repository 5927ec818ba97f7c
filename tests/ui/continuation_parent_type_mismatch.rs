use jobs::prelude::*;

#[job]
async fn count_rows(table: String) -> Result<u64, String> {
    Ok(table.len() as u64)
}

/// Takes its parent's result as a `String`, but `count_rows` returns a `u64`.
#[job]
async fn report(#[parent] rows: String, to: String) -> Result<(), String> {
    println!("{rows} rows for {to}");
    Ok(())
}

async fn chain(client: &Client) -> jobs::Result<()> {
    let counted = count_rows::enqueue(client, "users".into()).await?;
    report::continue_after(client, counted, "ops@example.com".into()).await?;
    Ok(())
}

fn main() {
    let _ = chain;
}
