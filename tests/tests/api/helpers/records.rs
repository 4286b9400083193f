//! The chat-records function over an events function's stores.

use chat_core::handlers::records::{handle, RecordsConfig, RecordsState};
use chat_core::storage::redis::RedisClient;
use lambda_http::{Body, Response};

use super::{api_request, bearer, env_with, EventsApp};

/// The records function over the same table and Redis key prefix as an [`EventsApp`].
pub struct RecordsApp {
    pub state: RecordsState,
    pub events: EventsApp,
}

impl RecordsApp {
    pub async fn new() -> Self {
        let events = EventsApp::new().await;
        let config = RecordsConfig::load(env_with(&[
            ("CHAT_EVENTS_TABLE", events.table.as_str()),
            ("REDIS_KEY_PREFIX", events.prefix.as_str()),
            ("RATE_LIMIT_RECORDS_MAX", "1000"),
        ]))
        .expect("records config");
        let redis = RedisClient::new(&config.redis);
        let state = RecordsState::with_clients(config, redis, crate::helpers::dynamo().await);
        RecordsApp { state, events }
    }

    /// `GET {path_and_query}` with `headers`.
    pub async fn get_with(&self, path_and_query: &str, headers: &[(&str, &str)]) -> Response<Body> {
        handle(
            &self.state,
            api_request("GET", path_and_query, headers, None),
        )
        .await
    }

    /// `GET {path_and_query}` as a bearer caller of `role`.
    pub async fn get_as(&self, role: &str, path_and_query: &str) -> Response<Body> {
        let auth = format!("Bearer {}", bearer(&format!("{role}-1"), role, &[]));
        self.get_with(path_and_query, &[("authorization", &auth)])
            .await
    }
}
