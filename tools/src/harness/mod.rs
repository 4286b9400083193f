//! The local stand-in of Lambda that `scripts/coldstart` and `scripts/cost` run the release
//! bootstraps in. [`runtime_api`] spawns a bootstrap with the Lambda environment ([`env`])
//! against a local Lambda Runtime API that hands it a cold event and any warm ones, and
//! times the answers; [`procfs`] reads the process's peak RSS and CPU time; [`events`]
//! makes each run's API Gateway v2 events valid (fresh tokens, unique ids, new
//! signatures); [`ably_mock`] answers the functions' Ably REST calls; [`meter`] counts what
//! they ask of the local stores; [`secrets`] stores the functions' secrets in the stack's
//! Secrets Manager for `--secrets-by-arn`; [`args`] is the command line both binaries
//! share.

pub mod ably_mock;
pub mod args;
pub mod env;
pub mod events;
pub mod meter;
pub mod procfs;
pub mod runtime_api;
pub mod secrets;
