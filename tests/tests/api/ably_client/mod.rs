//! The Ably REST client against an HTTP mock standing in for Ably (there is no local Ably):
//! exact requests, retries, fallback hosts, deadlines and error mapping.

mod publishing;
mod reads;
