//! Lambda entry point for `chat-records`: config and clients once, then every request to the handler.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    chat_core::handlers::run::<chat_core::handlers::records::RecordsState>().await
}
