//! One module per Lambda function: its configuration, its state (clients built once at
//! cold start) and its request handler. The function binaries only call into these.

pub mod events;
pub mod publish;
pub mod resume;
pub mod stats;
pub mod token;
