//! Lambda entry point for `ably-events`: config and clients once, then every invocation
//! (API Gateway, SQS, Kinesis or a direct invoke) to its handler.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    chat_core::handlers::ably_events::run().await
}
