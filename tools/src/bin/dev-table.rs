//! Creates the chat events table (with its sparse `reports` index and TTL) in DynamoDB Local.
//! Env: `CHAT_EVENTS_TABLE` (or `--table`), `AWS_ENDPOINT_URL_DYNAMODB`, and the usual AWS
//! region/keys.

use clap::Parser;

/// Creates the chat events table in DynamoDB Local unless it exists.
#[derive(Parser)]
#[command(name = "dev-table")]
struct Args {
    /// The table's name.
    #[arg(long, env = "CHAT_EVENTS_TABLE")]
    table: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Args { table } = Args::parse();
    let client = chat_core::storage::dynamo::client();
    dev_tools::table::ensure_chat_events_table(&client, &table).await?;
    println!("table {table} is active");
    Ok(())
}
