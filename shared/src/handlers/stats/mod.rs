//! `GET /api/ably/stats`: dependency health, channel occupancy and live chat analytics.
//!
//! The checks (Ably `GET /time`, Redis `PING`, DynamoDB `DescribeTable` and
//! `DescribeTimeToLive`) run concurrently, each inside its own budget, so a hanging
//! dependency delays the answer by at most that budget. Status: `healthy` when all are
//! up; `degraded` (200) when Redis or Ably is down; `unhealthy` (503) when DynamoDB is
//! down or Ably refuses the API key.

use std::future::Future;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::TimeToLiveStatus;
use http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use serde_json::Value;

use crate::ably::{AblyClient, AblyError};
use crate::channels::{may_use, ChannelName};
use crate::events::time::iso_millis;
use crate::identity::{Caller, Role};
use crate::platform::clock;
use crate::platform::error::ApiError;
use crate::platform::http::{json_response, serve, RequestContext, Route, Service};
use crate::storage::analytics::{self, Analytics};
use crate::storage::{RedisClient, RedisError};

mod state;

pub use state::{StatsConfig, StatsState};

pub const SERVICE: Service = Service {
    name: "ably-stats",
    routes: &[Route {
        path: "/api/ably/stats",
        methods: &["GET"],
    }],
    max_body_bytes: 0,
};

pub async fn handle(state: &StatsState, req: Request) -> Response<Body> {
    serve(&SERVICE, &state.config.http, req, |req, ctx| {
        stats(state, req, ctx)
    })
    .await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Healthy,
    Degraded,
    Unhealthy,
}

/// One dependency's check. `error` is short and never carries a secret.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    pub ok: bool,
    pub latency_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
    #[serde(flatten)]
    pub details: serde_json::Map<String, Value>,
}

#[derive(Serialize)]
struct Dependencies {
    ably: Check,
    redis: Check,
    dynamodb: Check,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ChannelReport {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    is_active: Option<bool>,
    occupancy: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatsReport {
    status: Health,
    dependencies: Dependencies,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<ChannelReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    analytics: Option<AnalyticsReport>,
    timestamp: String,
    response_time_ms: f64,
}

#[derive(Serialize)]
#[serde(untagged)]
enum AnalyticsReport {
    Figures(Analytics),
    Unavailable { error: &'static str },
}

async fn stats(
    state: &StatsState,
    req: Request,
    ctx: RequestContext,
) -> Result<Response<Body>, ApiError> {
    let started = Instant::now();
    let caller = state.auth.authenticate_bearer(req.headers())?;
    let caller_id = caller.id_for_rate_limit();
    ctx.set_caller(caller_id.clone());
    let channel = requested_channel(&req, &caller)?;
    let budget = state.config.check_timeout;
    // Counted within the same budget as a check: a hanging Redis fails open, in time.
    let counted = within(budget, state.limiter.hit(&caller_id))
        .await
        .unwrap_or_else(|| Err(RedisError::Unavailable("timed out".into())));
    state.limiter.judge(counted)?;
    let sees_analytics = matches!(caller.role(), Some(Role::Admin | Role::Service));
    let now_ms = clock::now_ms();

    let (ably, redis, dynamodb, channel_report, analytics) = tokio::join!(
        check_ably(&state.ably, budget, now_ms),
        check_redis(&state.redis, budget),
        check_dynamodb(&state.dynamo, &state.config.table, budget),
        async {
            match &channel {
                Some(channel) => Some(channel_occupancy(&state.ably, channel, budget).await),
                None => None,
            }
        },
        async {
            if !sees_analytics {
                return None;
            }
            let read = within(budget, analytics::read(&state.redis, &state.keys, now_ms)).await;
            Some(match read {
                Some(Ok(figures)) => AnalyticsReport::Figures(figures),
                Some(Err(_)) | None => AnalyticsReport::Unavailable {
                    error: "redis unavailable",
                },
            })
        },
    );

    let (ably, ably_key_refused) = ably;
    let status = if !dynamodb.ok || ably_key_refused {
        Health::Unhealthy
    } else if !ably.ok || !redis.ok {
        Health::Degraded
    } else {
        Health::Healthy
    };
    let report = StatsReport {
        status,
        dependencies: Dependencies {
            ably,
            redis,
            dynamodb,
        },
        channel: channel_report,
        analytics,
        timestamp: iso_millis(now_ms).unwrap_or_default(),
        response_time_ms: millis(started),
    };
    let code = if status == Health::Unhealthy {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    Ok(json_response(code, &report))
}

/// The `channelName` query parameter: a channel the caller may use (400 malformed, 403 not theirs).
fn requested_channel(req: &Request, caller: &Caller) -> Result<Option<ChannelName>, ApiError> {
    let query = req.query_string_parameters_ref();
    let Some(name) = query.and_then(|q| q.first("channelName")) else {
        return Ok(None);
    };
    let channel = ChannelName::parse(name)?;
    if !may_use(caller, &channel) {
        return Err(ApiError::forbidden(
            "channel_forbidden",
            "channel not allowed for this caller",
        ));
    }
    Ok(Some(channel))
}

fn millis(since: Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 1000.0 * 10.0).round() / 10.0
}

/// Runs `future` within `budget`; `None` when it did not finish.
async fn within<T>(budget: Duration, future: impl Future<Output = T>) -> Option<T> {
    tokio::time::timeout(budget, future).await.ok()
}

fn check(
    started: Instant,
    error: Option<&'static str>,
    details: serde_json::Map<String, Value>,
) -> Check {
    Check {
        ok: error.is_none(),
        latency_ms: millis(started),
        error,
        details,
    }
}

fn ably_error(err: &AblyError) -> &'static str {
    match err {
        AblyError::Unauthorized { .. } => "api key refused",
        AblyError::Timeout => "timed out",
        AblyError::Unavailable { .. } => "unreachable",
        AblyError::Rejected { .. }
        | AblyError::InvalidResponse(_)
        | AblyError::InvalidRequest(_) => "unexpected response",
    }
}

/// Ably's clock; also reports our clock's skew from it. The second value is true when
/// Ably refused the API key, which makes the whole service unhealthy.
async fn check_ably(ably: &AblyClient, budget: Duration, now_ms: i64) -> (Check, bool) {
    let started = Instant::now();
    let mut details = serde_json::Map::new();
    match within(budget, ably.time(budget)).await {
        Some(Ok(ably_ms)) => {
            details.insert("clockSkewMs".into(), Value::from(now_ms - ably_ms));
            (check(started, None, details), false)
        }
        Some(Err(err)) => {
            let refused = err.is_configuration();
            (check(started, Some(ably_error(&err)), details), refused)
        }
        None => (check(started, Some("timed out"), details), false),
    }
}

async fn check_redis(redis: &RedisClient, budget: Duration) -> Check {
    let started = Instant::now();
    let error = match within(budget, redis.ping()).await {
        Some(Ok(())) => None,
        Some(Err(RedisError::Unauthorized)) => Some("token refused"),
        Some(Err(RedisError::Unavailable(_))) => Some("unreachable"),
        Some(Err(_)) => Some("unexpected response"),
        None => Some("timed out"),
    };
    check(started, error, serde_json::Map::new())
}

/// The table must exist and be active; TTL state is reported alongside.
async fn check_dynamodb(client: &aws_sdk_dynamodb::Client, table: &str, budget: Duration) -> Check {
    let started = Instant::now();
    let mut details = serde_json::Map::new();
    let probe = async {
        let (described, ttl) = tokio::join!(
            client.describe_table().table_name(table).send(),
            client.describe_time_to_live().table_name(table).send(),
        );
        (described, ttl)
    };
    let error = match within(budget, probe).await {
        None => Some("timed out"),
        Some((Err(err), _)) => Some(
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception())
            {
                "table not found"
            } else {
                "unreachable"
            },
        ),
        Some((Ok(described), ttl)) => {
            let status = described
                .table()
                .and_then(|t| t.table_status())
                .map(|s| s.as_str().to_owned());
            details.insert(
                "tableStatus".into(),
                Value::from(status.clone().unwrap_or_default()),
            );
            if let Ok(ttl) = ttl {
                let enabled = ttl
                    .time_to_live_description()
                    .and_then(|d| d.time_to_live_status())
                    == Some(&TimeToLiveStatus::Enabled);
                details.insert("ttlEnabled".into(), Value::from(enabled));
            }
            if status.as_deref() == Some("ACTIVE") || status.as_deref() == Some("UPDATING") {
                None
            } else {
                Some("table not active")
            }
        }
    };
    check(started, error, details)
}

async fn channel_occupancy(
    ably: &AblyClient,
    channel: &ChannelName,
    budget: Duration,
) -> ChannelReport {
    let name = channel.to_string();
    match within(budget, ably.channel_status(&name, budget)).await {
        Some(Ok(status)) => ChannelReport {
            name,
            is_active: Some(status.status.is_active),
            occupancy: serde_json::to_value(&status.status.occupancy.metrics).ok(),
            error: None,
        },
        Some(Err(err)) => ChannelReport {
            name,
            is_active: None,
            occupancy: None,
            error: Some(ably_error(&err)),
        },
        None => ChannelReport {
            name,
            is_active: None,
            occupancy: None,
            error: Some("timed out"),
        },
    }
}
