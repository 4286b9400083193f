//! Live chat analytics, maintained by `ably-events` inside its one Redis round trip and
//! read here in one pipeline (never a `KEYS`/`SCAN`): active conversations, `message:ai`
//! latency percentiles, SLA signals and events mirrored.

use serde::Serialize;
use serde_json::Value;

use crate::storage::keys::Keys;
use crate::storage::redis::{cmd, RedisClient, RedisError};

/// The analytics' windows, used both where the mirror writes them and where this reads.
pub const MINUTE_MS: i64 = 60 * 1000;
/// A conversation is active when it had an event in the last 15 minutes.
pub const ACTIVE_WINDOW_MS: i64 = 15 * MINUTE_MS;
/// Latency samples, SLA counts and events mirrored cover the last hour.
pub const WINDOW_MS: i64 = 60 * MINUTE_MS;
/// The analytics keys live twice the window after their last write.
pub const KEY_TTL_SECONDS: i64 = 2 * WINDOW_MS / 1000;
/// Samples kept per latency series for the percentiles.
pub const SAMPLE_CAP: usize = 10_000;

/// P50 and P95 by the nearest-rank method, with the sample count.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Percentiles {
    pub samples: usize,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Analytics {
    /// Conversations with a mirrored event in the last 15 minutes.
    pub active_conversations: u64,
    /// `message:ai` `timing.ai_duration_ms` over the last hour.
    pub ai_duration_ms: Percentiles,
    /// `message:ai` `timing.queue_duration_ms` over the last hour.
    pub queue_duration_ms: Percentiles,
    /// `sla:warning` events mirrored in the last hour.
    pub sla_warnings: u64,
    /// `sla:violation` events mirrored in the last hour.
    pub sla_violations: u64,
    /// Chat events mirrored (new, not redelivered) in the last hour.
    pub events_mirrored: u64,
    pub window_minutes: u32,
}

/// The nearest-rank percentile `p` (0-100] of `sorted` (ascending).
pub fn nearest_rank(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted.get(rank.min(sorted.len()) - 1).copied()
}

fn percentiles(mut values: Vec<f64>) -> Percentiles {
    values.sort_by(f64::total_cmp);
    Percentiles {
        samples: values.len(),
        p50: nearest_rank(&values, 50.0),
        p95: nearest_rank(&values, 95.0),
    }
}

/// Reads every figure in one pipeline.
pub async fn read(redis: &RedisClient, keys: &Keys, now_ms: i64) -> Result<Analytics, RedisError> {
    let hour_ago = (now_ms - WINDOW_MS).to_string();
    let active_since = (now_ms - ACTIVE_WINDOW_MS).to_string();
    let this_minute = now_ms.div_euclid(MINUTE_MS);
    let mut commands = vec![
        cmd([
            "ZCOUNT".to_owned(),
            keys.active_conversations(),
            active_since,
            "+inf".into(),
        ]),
        cmd([
            "ZRANGEBYSCORE".to_owned(),
            keys.ai_duration_samples(),
            hour_ago.clone(),
            "+inf".into(),
        ]),
        cmd([
            "ZRANGEBYSCORE".to_owned(),
            keys.queue_duration_samples(),
            hour_ago,
            "+inf".into(),
        ]),
    ];
    // The current minute and the ones before it, back to the window's start.
    let minutes = WINDOW_MS / MINUTE_MS;
    for minute in (this_minute - minutes + 1)..=this_minute {
        commands.push(cmd([
            "HMGET".to_owned(),
            keys.minute(minute),
            "events".into(),
            "sla:warning".into(),
            "sla:violation".into(),
        ]));
    }
    let replies = redis.pipeline(&commands).await?;
    let reply = |i: usize| -> Result<&Value, RedisError> {
        match replies.get(i) {
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => Err(RedisError::Command(e.clone())),
            None => Err(RedisError::Protocol("missing pipeline reply".into())),
        }
    };
    let samples = |v: &Value| -> Vec<f64> {
        v.as_array()
            .map(|members| {
                members
                    .iter()
                    .filter_map(Value::as_str)
                    .filter_map(|m| m.split_once('|').and_then(|(n, _)| n.parse().ok()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let number = |v: &Value| -> u64 {
        match v {
            Value::Number(n) => n.as_u64().unwrap_or(0),
            Value::String(s) => s.parse().unwrap_or(0),
            _ => 0,
        }
    };
    let (mut events, mut warnings, mut violations) = (0, 0, 0);
    for i in 3..replies.len() {
        if let Some(fields) = reply(i)?.as_array() {
            events += fields.first().map_or(0, number);
            warnings += fields.get(1).map_or(0, number);
            violations += fields.get(2).map_or(0, number);
        }
    }
    Ok(Analytics {
        active_conversations: number(reply(0)?),
        ai_duration_ms: percentiles(samples(reply(1)?)),
        queue_duration_ms: percentiles(samples(reply(2)?)),
        sla_warnings: warnings,
        sla_violations: violations,
        events_mirrored: events,
        window_minutes: (WINDOW_MS / MINUTE_MS) as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(nearest_rank(&v, 50.0), Some(10.0));
        assert_eq!(nearest_rank(&v, 95.0), Some(19.0));
        assert_eq!(nearest_rank(&[7.0], 95.0), Some(7.0));
        assert_eq!(nearest_rank(&[], 50.0), None);
        assert_eq!(nearest_rank(&[1.0, 2.0, 3.0], 100.0), Some(3.0));
    }
}
