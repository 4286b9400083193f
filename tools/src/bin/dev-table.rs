//! Creates the chat events table (with its `by_type` index and TTL) in DynamoDB Local.
//! Env: `CHAT_EVENTS_TABLE`, `AWS_ENDPOINT_URL_DYNAMODB`, and the usual AWS region/keys.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let table = std::env::var("CHAT_EVENTS_TABLE")
        .map_err(|_| anyhow::anyhow!("missing required environment variable CHAT_EVENTS_TABLE"))?;
    let client = chat_core::storage::dynamo::client();
    dev_tools::table::ensure_chat_events_table(&client, &table).await?;
    println!("table {table} is active");
    Ok(())
}
