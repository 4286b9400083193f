//! Integration tests against the real local stack (Redis behind the Upstash-compatible
//! proxy, DynamoDB Local). They live in `tests/api/`; run them with `scripts/test`.
