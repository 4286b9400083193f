//! Prints the headers Ably would send with a webhook body: `X-Ably-Key` and
//! `X-Ably-Signature` = base64(HMAC-SHA256(key secret, body bytes)).
//!
//! `sign-webhook events/ably-events/batched-message-body.json` (the key: the first entry of
//! `ABLY_WEBHOOK_KEYS`, the dedicated key the integration rule signs with).
//!
//! `sign-webhook --fresh --out .dev/webhook.json events/ably-events/batched-message-body.json`
//! first makes the sample as if Ably sent it now (see [`freshen`]), writes it to `--out`
//! and signs what it wrote: the samples carry 2023 timestamps, which the mirror skips as
//! expired. Given an API Gateway event of a JSON webhook
//! (`events/ably-events/batched-message.json`), it refreshes the event's body and writes
//! the event with its `x-ably-signature` and `content-length` made anew, for
//! `cargo lambda invoke ably-events --data-file <out>`.

use std::path::PathBuf;

use anyhow::Context as _;
use chat_core::ably::webhook::signature::sign;
use clap::Parser;
use dev_tools::webhook_load::Signer;
use serde_json::Value;

/// Prints the `X-Ably-Key` and `X-Ably-Signature` headers for a webhook body.
#[derive(Parser)]
#[command(name = "sign-webhook")]
struct Args {
    /// The body, exactly as it will be sent (with --fresh: the sample to refresh, a body
    /// or an API Gateway event of one).
    body: PathBuf,
    /// Shift every `timestamp` so that the newest is now, and give every message id and
    /// item serial a new suffix, so that the mirror stores the sample again.
    #[arg(long, requires = "out")]
    fresh: bool,
    /// Where to write the body that was signed.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut body =
        std::fs::read(&args.body).with_context(|| format!("reading {}", args.body.display()))?;
    let key = Signer::from_env()?;
    let mut written = body.clone();
    if args.fresh {
        let mut sample: Value = serde_json::from_slice(&body)
            .with_context(|| format!("{} is not JSON", args.body.display()))?;
        let now = chrono::Utc::now().timestamp_millis();
        match api_gateway_body(&sample) {
            // An API Gateway event of a JSON webhook: its body made fresh and signed anew.
            Some(inner) => {
                let mut inner: Value = serde_json::from_str(&inner)
                    .with_context(|| format!("the body of {} is not JSON", args.body.display()))?;
                freshen(&mut inner, now);
                let text = inner.to_string();
                body = text.clone().into_bytes();
                let headers = &mut sample["headers"];
                headers["x-ably-key"] = Value::from(key.key_name.as_str());
                headers["x-ably-signature"] = Value::from(sign(&key.secret, &body));
                headers["content-length"] = Value::from(body.len().to_string());
                sample["body"] = Value::from(text);
                written = serde_json::to_vec_pretty(&sample)?;
            }
            None => {
                freshen(&mut sample, now);
                body = serde_json::to_vec(&sample)?;
                written = body.clone();
            }
        }
    }
    if let Some(out) = &args.out {
        std::fs::write(out, &written).with_context(|| format!("writing {}", out.display()))?;
    }
    println!("X-Ably-Key: {}", key.key_name);
    println!("X-Ably-Signature: {}", sign(&key.secret, &body));
    Ok(())
}

/// The body of an API Gateway event carrying a (not base64) webhook, if `sample` is one.
fn api_gateway_body(sample: &Value) -> Option<String> {
    let is_event = sample.get("routeKey").is_some() && sample.get("headers").is_some();
    let binary = sample.get("isBase64Encoded") == Some(&Value::Bool(true));
    match sample.get("body") {
        Some(Value::String(body)) if is_event && !binary => Some(body.clone()),
        _ => None,
    }
}

/// Makes a sample as if sent at `now`: every `timestamp` moved by the same amount (the
/// newest becomes `now`), every message `id` and item `serial` suffixed with `now`.
fn freshen(sample: &mut Value, now: i64) {
    fn newest(value: &Value) -> Option<i64> {
        match value {
            Value::Object(fields) => fields
                .iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("timestamp", Value::Number(n)) => n.as_i64(),
                    _ => newest(v),
                })
                .max()
                .flatten(),
            Value::Array(items) => items.iter().filter_map(newest).max(),
            _ => None,
        }
    }
    fn shift(value: &mut Value, by: i64, now: i64) {
        match value {
            Value::Object(fields) => {
                for (key, v) in fields.iter_mut() {
                    match (key.as_str(), &*v) {
                        ("timestamp", Value::Number(n)) => {
                            *v = Value::from(n.as_i64().unwrap_or(now) + by);
                        }
                        ("id" | "serial", Value::String(s)) => {
                            *v = Value::String(match s.split_once(':') {
                                Some((head, rest)) => format!("{head}-{now}:{rest}"),
                                None => format!("{s}-{now}"),
                            });
                        }
                        _ => shift(v, by, now),
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| shift(v, by, now)),
            _ => {}
        }
    }
    let by = newest(sample).map_or(0, |max| now - max);
    shift(sample, by, now);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_fresh_sample_keeps_its_spacing_and_gets_new_ids() {
        let mut sample = json!({"items": [{"serial": "s:0", "timestamp": 1400, "data": {
            "messages": [{"id": "c:0:0", "timestamp": 1000}, {"id": "d:0:0", "timestamp": 1250}]}}]});
        freshen(&mut sample, 10_000);
        assert_eq!(sample["items"][0]["timestamp"], 10_000);
        assert_eq!(sample["items"][0]["serial"], "s-10000:0");
        let messages = &sample["items"][0]["data"]["messages"];
        assert_eq!(messages[0]["timestamp"], 9_600);
        assert_eq!(messages[1]["timestamp"], 9_850);
        assert_eq!(messages[0]["id"], "c-10000:0:0");
    }
}
