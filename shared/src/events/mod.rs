//! Chat events: the normalised event with its keys, limits and times, the messages that
//! change and the current view of them, the polling cursor over them, and the envelope
//! the Redis pub/sub bridge publishes.

pub mod bridge;
pub mod change;
pub mod cursor;
pub mod event;
pub mod payload;
pub mod time;
pub mod version;
pub mod view;

pub use event::ChatEvent;
pub use payload::Payload;
