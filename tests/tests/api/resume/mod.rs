//! `POST|GET /api/chat/resume` and `GET /api/chat/events` through the real handler over
//! the real Redis (Upstash proxy) and DynamoDB Local: links are issued only to those who
//! may, redeemed exactly once, set a session cookie the token endpoint accepts, and
//! hydrate history written by the real webhook handler.

mod history;
mod issuing;
mod links;
