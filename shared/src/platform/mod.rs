//! What every function stands on: the HTTP layer (routing, CORS, headers, the one error
//! mapping), the error type, configuration from the environment, logs, metrics, outbound
//! HTTP clients (also under the AWS SDK), the clock and the realtime rollout.

pub mod aws_env;
pub mod aws_http;
pub mod clock;
pub mod env;
pub mod error;
pub mod http;
pub mod http_client;
pub mod metrics;
pub mod realtime;
pub mod secrets;
pub mod telemetry;
