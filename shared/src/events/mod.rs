//! Chat events: the normalised event with its keys, limits and times, the polling cursor
//! over them, and the envelope the Redis pub/sub bridge publishes.

pub mod bridge;
pub mod cursor;
pub mod event;
pub mod payload;
pub mod time;

pub use event::ChatEvent;
pub use payload::Payload;
