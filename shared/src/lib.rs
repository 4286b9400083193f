//! Shared library of the Ably chat Lambda functions.
//!
//! Every function binary is a thin `main.rs`: it starts telemetry, builds its state
//! (typed config and clients) once at cold start and hands each request to a handler
//! in [`handlers`]. Everything two functions could share lives here.

pub mod ably;
pub mod ably_auth;
pub mod analytics;
pub mod auth;
pub mod aws_http;
pub mod bridge;
pub mod channels;
pub mod config;
pub mod cursor;
pub mod dynamo;
pub mod email;
pub mod error;
pub mod handlers;
pub mod http;
pub mod ids;
pub mod mail;
pub mod metrics;
pub mod ratelimit;
pub mod redis;
pub mod resume_link;
pub mod store;
pub mod telemetry;
pub mod webhook;

pub use error::ApiError;
