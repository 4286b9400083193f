//! `POST /api/ably/token` through the real handler over the real Redis: TokenRequests,
//! Ably JWTs, capabilities per caller, body validation and rate limits.

mod grants;
mod limits;
