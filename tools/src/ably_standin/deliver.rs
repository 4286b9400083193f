//! The integration rule the stand-in plays: what is published (and every change) is
//! batched for about a second, enveloped as Ably's batched webhook
//! (`{"items":[{webhookId, source, serial, timestamp, name, data: {channelId, site,
//! messages}}]}`, one item per channel), signed with the webhook key (`X-Ably-Key`,
//! `X-Ably-Signature` = base64 HMAC-SHA256 over the body) and POSTed to the events URL.
//!
//! A 5xx or a network failure is retried as Ably documents for webhooks: the first retry
//! after 1 s, each delay the one before times sqrt(2), at most 60 s, and a batch that could
//! not be delivered within 5 minutes (`retry_for`) is dropped. A 4xx is not retried.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chat_core::ably::webhook::signature::sign;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::channels::Delivered;
use super::{log, now_ms};

/// Where and how the integration rule delivers.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// The events endpoint, e.g. `http://127.0.0.1:9000/api/ably/events`.
    pub url: String,
    /// The webhook key, `keyName` and secret.
    pub key_name: String,
    pub secret: String,
    /// How long messages are gathered into one webhook.
    pub batch_window: Duration,
    /// The first retry's delay.
    pub first_retry: Duration,
    /// The longest delay between retries.
    pub max_retry: Duration,
    /// How long a batch is retried before it is dropped.
    pub retry_for: Duration,
}

impl DeliveryConfig {
    /// Ably's documented schedule, to `url`, signed with `key_name` and `secret`.
    pub fn new(url: &str, key_name: &str, secret: &str) -> Self {
        DeliveryConfig {
            url: url.to_owned(),
            key_name: key_name.to_owned(),
            secret: secret.to_owned(),
            batch_window: Duration::from_secs(1),
            first_retry: Duration::from_secs(1),
            max_retry: Duration::from_secs(60),
            retry_for: Duration::from_secs(5 * 60),
        }
    }

    /// The delay before retry `n` (1-based): `first_retry * sqrt(2)^(n-1)`, at most `max_retry`.
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = std::f64::consts::SQRT_2.powi(retry.saturating_sub(1).min(64) as i32);
        self.first_retry.mul_f64(factor).min(self.max_retry)
    }
}

/// The batched webhook body of `delivered` (one item per channel, in publish order).
pub fn envelope(delivered: &[Delivered], batch: u64, now: u64) -> Value {
    let mut channels: BTreeMap<usize, (&str, Vec<&Value>)> = BTreeMap::new();
    let mut order: Vec<&str> = Vec::new();
    for d in delivered {
        let at = match order.iter().position(|c| *c == d.channel) {
            Some(at) => at,
            None => {
                order.push(&d.channel);
                order.len() - 1
            }
        };
        channels
            .entry(at)
            .or_insert_with(|| (&d.channel, Vec::new()))
            .1
            .push(&d.message);
    }
    let items: Vec<Value> = channels
        .into_values()
        .enumerate()
        .map(|(i, (channel, messages))| {
            json!({
                "webhookId": "standinHook",
                "source": "channel.message",
                "serial": format!("standin{batch:010}:{i}"),
                "timestamp": now,
                "name": "channel.message",
                "data": { "channelId": channel, "site": "local-standin", "messages": messages },
            })
        })
        .collect();
    json!({ "items": items })
}

/// Starts the integration rule; what is sent on the returned channel is delivered.
pub fn spawn(config: DeliveryConfig) -> mpsc::UnboundedSender<Delivered> {
    let (sender, receiver) = mpsc::unbounded_channel();
    tokio::spawn(run(config, receiver));
    sender
}

async fn run(config: DeliveryConfig, mut receiver: mpsc::UnboundedReceiver<Delivered>) {
    let http = http_client();
    let mut batch = 0;
    while let Some(first) = receiver.recv().await {
        tokio::time::sleep(config.batch_window).await;
        let mut pending = vec![first];
        while let Ok(more) = receiver.try_recv() {
            pending.push(more);
        }
        batch += 1;
        let body = envelope(&pending, batch, now_ms());
        deliver(&http, &config, batch, pending.len(), &body).await;
    }
}

/// The client deliveries go out on (rustls needs its crypto provider first).
pub fn http_client() -> reqwest::Client {
    chat_core::platform::telemetry::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap_or_default()
}

/// Posts one batch until it is taken, refused (4xx), or `retry_for` has passed.
/// Returns the last status (None: no answer).
pub async fn deliver(
    http: &reqwest::Client,
    config: &DeliveryConfig,
    batch: u64,
    messages: usize,
    body: &Value,
) -> Option<u16> {
    let bytes = body.to_string().into_bytes();
    let signature = sign(&config.secret, &bytes);
    let started = Instant::now();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let answer = http
            .post(&config.url)
            .header("content-type", "application/json")
            .header("user-agent", "Ably-Webhooks (ably-standin)")
            .header("x-ably-key", &config.key_name)
            .header("x-ably-signature", &signature)
            .header("x-ably-version", "1.2")
            .body(bytes.clone())
            .send()
            .await;
        let (status, said) = match answer {
            Ok(response) => {
                let status = response.status().as_u16();
                let text = response.text().await.unwrap_or_default();
                (Some(status), text)
            }
            Err(err) => (None, err.to_string()),
        };
        let shown = status.map_or_else(|| "no answer".to_owned(), |s| s.to_string());
        log(&format!(
            "delivery batch {batch} ({messages} messages) attempt {attempt} -> {} : {shown} {}",
            config.url,
            said.chars().take(300).collect::<String>()
        ));
        let retry = match status {
            Some(s) if (200..300).contains(&s) => return status,
            Some(s) if s < 500 => false,
            _ => true,
        };
        let pause = config.backoff(attempt);
        if !retry || started.elapsed() + pause > config.retry_for {
            log(&format!(
                "delivery batch {batch} dropped after {attempt} attempts ({shown})"
            ));
            return status;
        }
        tokio::time::sleep(pause).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn delivered(channel: &str, id: &str) -> Delivered {
        Delivered {
            channel: channel.to_owned(),
            message: json!({ "id": id }),
        }
    }

    #[test]
    fn the_backoff_is_ablys_sqrt2_schedule_capped_at_a_minute() {
        let config = DeliveryConfig::new("http://x", "k", "s");
        let secs: Vec<u64> = (1..=14).map(|n| config.backoff(n).as_secs()).collect();
        assert_eq!(secs, [1, 1, 2, 2, 4, 5, 8, 11, 16, 22, 32, 45, 60, 60]);
    }

    #[test]
    fn one_item_per_channel_in_the_order_they_came() {
        let body = envelope(
            &[
                delivered("conversation:b", "1"),
                delivered("conversation:a", "2"),
                delivered("conversation:b", "3"),
            ],
            7,
            99,
        );
        let items = body["items"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["data"]["channelId"], "conversation:b");
        assert_eq!(
            items[0]["data"]["messages"],
            json!([{"id": "1"}, {"id": "3"}])
        );
        assert_eq!(items[1]["data"]["channelId"], "conversation:a");
        assert_eq!(items[0]["source"], "channel.message");
        assert_eq!(items[0]["name"], "channel.message");
        assert_eq!(items[0]["timestamp"], 99);
        assert_ne!(items[0]["serial"], items[1]["serial"]);
    }

    /// A server answering each request with the next status of `statuses` (then 200),
    /// keeping the signatures it was sent.
    async fn server(statuses: Vec<u16>) -> (String, Arc<AtomicUsize>) {
        use hyper::service::service_fn;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/api/ably/events", listener.local_addr().unwrap());
        let count = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&count);
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let (statuses, seen) = (statuses.clone(), Arc::clone(&seen));
                tokio::spawn(async move {
                    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let n = seen.fetch_add(1, Ordering::SeqCst);
                        let status = statuses.get(n).copied().unwrap_or(200);
                        let signed = req.headers().contains_key("x-ably-signature");
                        async move {
                            let status = if signed { status } else { 401 };
                            Ok::<_, std::convert::Infallible>(
                                hyper::Response::builder()
                                    .status(status)
                                    .body(http_body_util::Full::new(bytes::Bytes::new()))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (url, count)
    }

    fn quick(url: &str) -> DeliveryConfig {
        DeliveryConfig {
            first_retry: Duration::from_millis(10),
            max_retry: Duration::from_millis(20),
            retry_for: Duration::from_millis(500),
            ..DeliveryConfig::new(url, "devApp.devWebhookKey", "secret")
        }
    }

    #[tokio::test]
    async fn a_5xx_is_retried_until_taken_and_a_4xx_is_not() {
        let http = http_client();
        let (url, count) = server(vec![503, 500]).await;
        let body = envelope(&[delivered("conversation:a", "1")], 1, 1);
        assert_eq!(deliver(&http, &quick(&url), 1, 1, &body).await, Some(200));
        assert_eq!(count.load(Ordering::SeqCst), 3);

        let (url, count) = server(vec![400]).await;
        assert_eq!(deliver(&http, &quick(&url), 2, 1, &body).await, Some(400));
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_batch_is_dropped_once_its_retry_time_is_spent() {
        let http = http_client();
        let (url, count) = server(vec![503; 1000]).await;
        let body = envelope(&[delivered("conversation:a", "1")], 1, 1);
        let config = DeliveryConfig {
            retry_for: Duration::from_millis(100),
            ..quick(&url)
        };
        assert_eq!(deliver(&http, &config, 1, 1, &body).await, Some(503));
        let attempts = count.load(Ordering::SeqCst);
        assert!((2..=12).contains(&attempts), "{attempts} attempts");
    }
}
