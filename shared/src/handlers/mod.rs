//! One folder per Lambda function, each of the same shape: `mod.rs` with its route table
//! (`SERVICE`) and `handle`, `state.rs` with its configuration and its state (clients
//! built once at cold start). Every entry point starts through [`cold_start`]: the
//! HTTP-only function binaries call [`run`]; `ably-events`, which also takes SQS, Kinesis
//! and direct invokes, calls [`ably_events::run`].

pub mod ably_events;
pub mod erased;
pub mod publish;
pub mod records;
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

impl Function for token::TokenState {
    fn from_env(env: Env) -> Result<Self, ConfigError> {
        token::TokenState::from_env(env)
    }
    fn handle(&self, req: Request) -> impl Future<Output = Response<Body>> + Send {
        token::handle(self, req)
    }
}

impl Function for publish::PublishState {
    fn from_env(env: Env) -> Result<Self, ConfigError> {
        publish::PublishState::from_env(env)
    }
    fn handle(&self, req: Request) -> impl Future<Output = Response<Body>> + Send {
        publish::handle(self, req)
    }
}

impl Function for stats::StatsState {
    fn from_env(env: Env) -> Result<Self, ConfigError> {
        stats::StatsState::from_env(env)
    }
    fn handle(&self, req: Request) -> impl Future<Output = Response<Body>> + Send {
        stats::handle(self, req)
    }
}

impl Function for resume::ResumeState {
    fn from_env(env: Env) -> Result<Self, ConfigError> {
        resume::ResumeState::from_env(env)
    }
    fn handle(&self, req: Request) -> impl Future<Output = Response<Body>> + Send {
        resume::handle(self, req)
    }
}

impl Function for records::RecordsState {
    fn from_env(env: Env) -> Result<Self, ConfigError> {
        records::RecordsState::from_env(env)
    }
    fn handle(&self, req: Request) -> impl Future<Output = Response<Body>> + Send {
        records::handle(self, req)
    }
}
