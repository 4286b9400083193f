//! One module per Lambda function: its configuration, its state (clients built once at
//! cold start) and its request handler. The HTTP-only function binaries only call
//! [`run`]; `ably-events`, which also takes SQS, Kinesis and direct invokes, calls
//! [`ably_events::run`].

pub mod ably_events;
pub mod publish;
pub mod resume;
pub mod stats;
pub mod token;

use std::future::Future;
use std::sync::Arc;

use lambda_http::{service_fn, Body, Request, Response};

use crate::platform::env::ConfigError;

/// What a function binary runs: a state built once from the environment, and the
/// handler every request goes to.
pub trait Function: Sized + Send + Sync + 'static {
    /// Typed configuration and clients, at cold start; an error names every bad variable.
    fn from_env() -> Result<Self, ConfigError>;
    /// One request; client and server errors alike are responses, never invocation errors.
    fn handle(&self, req: Request) -> impl Future<Output = Response<Body>> + Send;
}

/// Starts JSON logs, builds the state (a failed cold start is logged and ends the
/// process) and serves requests until the runtime stops.
pub async fn run<F: Function>() -> Result<(), lambda_http::Error> {
    crate::platform::telemetry::init();
    let state =
        Arc::new(F::from_env().inspect_err(|e| tracing::error!(error = %e, "cold start failed"))?);
    lambda_http::run(service_fn(move |req: Request| {
        let state = Arc::clone(&state);
        async move { Ok::<_, lambda_http::Error>(state.handle(req).await) }
    }))
    .await
}

/// Each function's state is a [`Function`]: its own `from_env` and `handle`.
macro_rules! functions {
    ($($module:ident::$state:ident),* $(,)?) => {$(
        impl Function for $module::$state {
            fn from_env() -> Result<Self, ConfigError> {
                $module::$state::from_env()
            }
            fn handle(&self, req: Request) -> impl Future<Output = Response<Body>> + Send {
                $module::handle(self, req)
            }
        }
    )*};
}

functions!(
    token::TokenState,
    publish::PublishState,
    stats::StatsState,
    resume::ResumeState,
);
