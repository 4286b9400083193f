//! Lambda entry point for `resume`: config and clients once, then every request to the handler.

use std::sync::Arc;

use chat_core::handlers::resume::{handle, ResumeState};
use lambda_http::{run, service_fn, Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    chat_core::telemetry::init();
    let state = Arc::new(
        ResumeState::from_env()
            .inspect_err(|e| tracing::error!(error = %e, "cold start failed"))?,
    );
    run(service_fn(move |req: Request| {
        let state = Arc::clone(&state);
        async move { Ok::<_, Error>(handle(&state, req).await) }
    }))
    .await
}
