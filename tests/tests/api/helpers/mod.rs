//! What every test module uses, and nothing but this: the stack, requests and identities,
//! and one builder per function (events, resume, token, publish, stats, records), and messages that
//! change as Ably delivers them. Test modules import from here, never from each other
//! (`shared/tests/layout.rs` holds them to it).

mod ably;
mod changes;
mod events;
mod identities;
mod publish;
mod records;
mod requests;
mod resume;
mod stack;
mod stats;
mod token;

pub use ably::*;
pub use changes::*;
pub use events::*;
pub use identities::*;
pub use publish::*;
pub use records::*;
pub use requests::*;
pub use resume::*;
pub use stack::*;
pub use stats::*;
pub use token::*;
