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

use crate::platform::env::{ConfigError, Env};

/// What a function binary runs: a state built once from the environment, and the
/// handler every request goes to.
pub trait Function: Sized + Send + Sync + 'static {
    /// Typed configuration and clients, at cold start; an error names every bad variable.
    fn from_env(env: Env) -> Result<Self, ConfigError>;
    /// One request; client and server errors alike are responses, never invocation errors.
    fn handle(&self, req: Request) -> impl Future<Output = Response<Body>> + Send;
}

/// The one cold start of every function: JSON logs, the process environment with its
/// secrets read from Secrets Manager (`X_SECRET_ARN`), and the state `build` makes of it.
/// A failure is logged and ends the process, naming every bad variable.
pub async fn cold_start<S>(
    build: impl FnOnce(Env) -> Result<S, ConfigError>,
) -> Result<Arc<S>, ConfigError> {
    crate::platform::telemetry::init();
    let env = crate::platform::secrets::process_env().await;
    env.and_then(build)
        .map(Arc::new)
        .inspect_err(|e| tracing::error!(error = %e, "cold start failed"))
}

/// Builds the state ([`cold_start`]) and serves requests until the runtime stops.
pub async fn run<F: Function>() -> Result<(), lambda_http::Error> {
    let state = cold_start(F::from_env).await?;
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
            fn from_env(env: Env) -> Result<Self, ConfigError> {
                $module::$state::from_env(env)
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
