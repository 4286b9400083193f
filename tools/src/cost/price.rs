//! Prices and the cost formula, and the Markdown tables of `scripts/cost`.
//!
//! Per million units (chat events or token requests), with `I` = invocations per million
//! units = 1 000 000 / units per invocation and `B` = billed ms per invocation =
//! (1 - cold share) x warm billed ms + cold share x (init + first invocation) billed ms:
//!
//! ```text
//! Lambda         I x (B / 1000 x memory GB x $ per GB-s + $ per request)
//! API Gateway    I x requests per invocation (512 KB increments) x $ per request
//! SQS            I x (SendMessage per record + receives + deletes) x $ per request
//! DynamoDB       I x (write request units x $ per WRU + read request units x $ per RRU)
//! Upstash        I x commands per invocation x $ per command
//! ```

use serde::Deserialize;
use serde_json::{json, Value};

use super::Measured;

/// One published price.
#[derive(Debug, Clone, Deserialize)]
pub struct Price {
    pub usd: f64,
    /// What the price is for, as the source states it.
    pub per: String,
    pub source: String,
}

/// The prices the formula uses (`scripts/cost` holds them, with the date they were read).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Prices {
    /// When the sources were read (YYYY-MM-DD).
    pub read: String,
    pub region: String,
    /// Per GB-second.
    pub lambda_arm64_gb_second: Price,
    /// Per million requests.
    pub lambda_requests: Price,
    /// Per million requests.
    pub api_gateway_http_requests: Price,
    /// Per million requests.
    pub sqs_requests: Price,
    /// Per million write request units.
    pub dynamodb_write_request_units: Price,
    /// Per million read request units.
    pub dynamodb_read_request_units: Price,
    /// Per 100 000 commands.
    pub upstash_commands: Price,
}

/// What one invocation of a scenario uses.
#[derive(Debug, Clone, PartialEq)]
pub struct PerInvocation {
    /// Chat events or token requests it carries.
    pub units: f64,
    /// The configured memory, which Lambda bills (not the resident set).
    pub memory_mb: u32,
    pub warm_billed_ms: f64,
    /// Init and the first invocation together.
    pub cold_billed_ms: f64,
    pub api_gateway_requests: f64,
    pub sqs_requests: f64,
    pub dynamo_write_units: f64,
    pub dynamo_read_units: f64,
    pub upstash_commands: f64,
}

/// Dollars per million units, by resource.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Dollars {
    pub lambda_duration: f64,
    pub lambda_requests: f64,
    pub api_gateway: f64,
    pub sqs: f64,
    pub dynamodb: f64,
    pub upstash: f64,
}

impl Dollars {
    pub fn total(&self) -> f64 {
        self.lambda_duration
            + self.lambda_requests
            + self.api_gateway
            + self.sqs
            + self.dynamodb
            + self.upstash
    }
}

/// What a million units use and cost.
#[derive(Debug, Clone, PartialEq)]
pub struct PerMillion {
    pub invocations: f64,
    /// Per invocation, cold starts included at their share.
    pub billed_ms: f64,
    pub gb_seconds: f64,
    pub api_gateway_requests: f64,
    pub sqs_requests: f64,
    pub dynamo_write_units: f64,
    pub dynamo_read_units: f64,
    pub upstash_commands: f64,
    pub usd: Dollars,
}

/// The formula of this module's header.
pub fn per_million(inv: &PerInvocation, cold_share: f64, prices: &Prices) -> PerMillion {
    let invocations = 1_000_000.0 / inv.units;
    let billed_ms = (1.0 - cold_share) * inv.warm_billed_ms + cold_share * inv.cold_billed_ms;
    let gb_seconds = invocations * billed_ms / 1000.0 * f64::from(inv.memory_mb) / 1024.0;
    let api_gateway_requests = invocations * inv.api_gateway_requests;
    let sqs_requests = invocations * inv.sqs_requests;
    let dynamo_write_units = invocations * inv.dynamo_write_units;
    let dynamo_read_units = invocations * inv.dynamo_read_units;
    let upstash_commands = invocations * inv.upstash_commands;
    let per_million = |count: f64, price: &Price| count / 1e6 * price.usd;
    PerMillion {
        invocations,
        billed_ms,
        gb_seconds,
        api_gateway_requests,
        sqs_requests,
        dynamo_write_units,
        dynamo_read_units,
        upstash_commands,
        usd: Dollars {
            lambda_duration: gb_seconds * prices.lambda_arm64_gb_second.usd,
            lambda_requests: per_million(invocations, &prices.lambda_requests),
            api_gateway: per_million(api_gateway_requests, &prices.api_gateway_http_requests),
            sqs: per_million(sqs_requests, &prices.sqs_requests),
            dynamodb: per_million(dynamo_write_units, &prices.dynamodb_write_request_units)
                + per_million(dynamo_read_units, &prices.dynamodb_read_request_units),
            upstash: upstash_commands / 1e5 * prices.upstash_commands.usd,
        },
    }
}

/// `p` (0-100) of `values`, nearest rank.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Groups of three digits separated by spaces, as the docs write large numbers.
pub fn grouped(value: f64) -> String {
    if value.fract().abs() > 1e-9 && value < 1000.0 {
        return format!("{value:.1}");
    }
    let digits = format!("{:.0}", value.round());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 && c != '-' {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

fn usd(value: f64) -> String {
    format!("${value:.4}")
}

/// Measurements per scenario: durations, memory and what one invocation asks for.
pub fn measured_table(measured: &[Measured]) -> String {
    let mut out = String::from(
        "| scenario | function (memory) | processes x invocations | init ms (median) | first invoke ms (median) | cold billed ms (mean) | warm ms (median / p95) | warm billed ms (mean) | peak RSS MiB (max) | Upstash requests / commands | DynamoDB requests / items / WRU / RRU | API Gateway / SQS requests |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for m in measured {
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
        let init: Vec<f64> = m.processes.iter().map(|p| ms(p.init)).collect();
        let first: Vec<f64> = m
            .processes
            .iter()
            .map(|p| ms(p.invocations[0].duration))
            .collect();
        let warm: Vec<f64> = m
            .processes
            .iter()
            .flat_map(|p| p.invocations[1..].iter().map(move |i| ms(i.duration)))
            .collect();
        let rss = m
            .processes
            .iter()
            .map(|p| p.peak_rss_kib)
            .max()
            .unwrap_or(0) as f64
            / 1024.0;
        let counts = m.warm_counts();
        let invocations = m.processes.first().map_or(0, |p| p.invocations.len());
        out.push_str(&format!(
            "| {} | {} ({} MB) | {} x {} | {:.1} | {:.1} | {:.1} | {:.1} / {:.1} | {:.1} | {:.1} | {} / {} | {} / {} / {:.0} / {} | {} / {} |\n",
            m.scenario.name,
            m.scenario.function,
            m.memory_mb,
            m.processes.len(),
            invocations,
            percentile(&init, 50.0),
            percentile(&first, 50.0),
            super::mean(&m.cold_billed_ms()),
            percentile(&warm, 50.0),
            percentile(&warm, 95.0),
            super::mean(&m.warm_billed_ms()),
            rss,
            counts.redis_requests,
            counts.redis_commands,
            counts.dynamo_requests,
            counts.dynamo_items_written,
            counts.dynamo_write_units,
            grouped(counts.dynamo_read_units),
            m.api_gateway_requests,
            m.sqs_requests,
        ));
    }
    out
}

/// What a million units use, and their total cost.
pub fn usage_table(measured: &[Measured], cold_share: f64, prices: &Prices) -> String {
    let mut out = format!(
        "| scenario | per 1M | Lambda invocations | billed ms per invocation ({}% cold) | Lambda GB-s | API Gateway requests | SQS requests | DynamoDB WRU | DynamoDB RRU | Upstash commands | $ per 1M |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
        cold_share * 100.0
    );
    for m in measured {
        let p = per_million(&m.per_invocation(), cold_share, prices);
        out.push_str(&format!(
            "| {} | {}s | {} | {:.2} | {:.1} | {} | {} | {} | {} | {} | {} |\n",
            m.scenario.name,
            m.scenario.unit.name(),
            grouped(p.invocations),
            p.billed_ms,
            p.gb_seconds,
            grouped(p.api_gateway_requests),
            grouped(p.sqs_requests),
            grouped(p.dynamo_write_units),
            grouped(p.dynamo_read_units),
            grouped(p.upstash_commands),
            usd(p.usd.total()),
        ));
    }
    out
}

/// Dollars per million units, by resource.
pub fn dollars_table(measured: &[Measured], cold_share: f64, prices: &Prices) -> String {
    let mut out = String::from(
        "| scenario | Lambda duration | Lambda requests | API Gateway | SQS | DynamoDB | Upstash | total per 1M |\n|---|---|---|---|---|---|---|---|\n",
    );
    for m in measured {
        let d = per_million(&m.per_invocation(), cold_share, prices).usd;
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | **{}** per 1M {}s |\n",
            m.scenario.name,
            usd(d.lambda_duration),
            usd(d.lambda_requests),
            usd(d.api_gateway),
            usd(d.sqs),
            usd(d.dynamodb),
            usd(d.upstash),
            usd(d.total()),
            m.scenario.unit.name(),
        ));
    }
    out
}

/// The prices used, with their sources and the date they were read.
pub fn prices_table(prices: &Prices) -> String {
    let mut out = format!(
        "Prices ({}, read {}):\n\n| item | price | per | source |\n|---|---|---|---|\n",
        prices.region, prices.read
    );
    for (item, price) in [
        ("Lambda duration, arm64", &prices.lambda_arm64_gb_second),
        ("Lambda requests", &prices.lambda_requests),
        ("API Gateway HTTP API", &prices.api_gateway_http_requests),
        ("SQS standard queue", &prices.sqs_requests),
        (
            "DynamoDB on-demand writes",
            &prices.dynamodb_write_request_units,
        ),
        (
            "DynamoDB on-demand reads",
            &prices.dynamodb_read_request_units,
        ),
        ("Upstash Redis pay as you go", &prices.upstash_commands),
    ] {
        // At least cents, never fewer digits than published ($0.625, $0.0000133334).
        let amount = match price.usd.to_string().split_once('.') {
            Some((_, decimals)) if decimals.len() >= 2 => price.usd.to_string(),
            _ => format!("{:.2}", price.usd),
        };
        out.push_str(&format!(
            "| {item} | ${amount} | {} | {} |\n",
            price.per, price.source
        ));
    }
    out
}

/// Every measurement and result as JSON.
pub fn to_json(measured: &[Measured], cold_share: f64, prices: &Prices) -> Value {
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    Value::Array(
        measured
            .iter()
            .map(|m| {
                let inv = m.per_invocation();
                let p = per_million(&inv, cold_share, prices);
                let counts = m.warm_counts();
                json!({
                    "scenario": m.scenario.name,
                    "function": m.scenario.function,
                    "unit": m.scenario.unit.name(),
                    "unitsPerInvocation": inv.units,
                    "memoryMb": m.memory_mb,
                    "processes": m.processes.iter().map(|p| json!({
                        "initMs": ms(p.init),
                        "invocationMs": p.invocations.iter().map(|i| ms(i.duration)).collect::<Vec<_>>(),
                        "peakRssKiB": p.peak_rss_kib,
                    })).collect::<Vec<_>>(),
                    "perInvocation": {
                        "warmBilledMs": inv.warm_billed_ms,
                        "coldBilledMs": inv.cold_billed_ms,
                        "apiGatewayRequests": inv.api_gateway_requests,
                        "sqsRequests": inv.sqs_requests,
                        "upstashRequests": counts.redis_requests,
                        "upstashCommands": counts.redis_by_command,
                        "dynamodbRequests": counts.dynamo_by_operation,
                        "dynamodbItemsWritten": counts.dynamo_items_written,
                        "dynamodbWriteUnits": counts.dynamo_write_units,
                        "dynamodbReadUnits": counts.dynamo_read_units,
                    },
                    "coldInvocationCounts": m.counted.first().map(|c| json!({
                        "upstashCommands": c.redis_commands,
                        "dynamodbRequests": c.dynamo_requests,
                        "dynamodbWriteUnits": c.dynamo_write_units,
                        "dynamodbReadUnits": c.dynamo_read_units,
                    })),
                    "perMillion": {
                        "coldShare": cold_share,
                        "invocations": p.invocations,
                        "billedMsPerInvocation": p.billed_ms,
                        "gbSeconds": p.gb_seconds,
                        "apiGatewayRequests": p.api_gateway_requests,
                        "sqsRequests": p.sqs_requests,
                        "dynamodbWriteUnits": p.dynamo_write_units,
                        "dynamodbReadUnits": p.dynamo_read_units,
                        "upstashCommands": p.upstash_commands,
                        "usd": {
                            "lambdaDuration": p.usd.lambda_duration,
                            "lambdaRequests": p.usd.lambda_requests,
                            "apiGateway": p.usd.api_gateway,
                            "sqs": p.usd.sqs,
                            "dynamodb": p.usd.dynamodb,
                            "upstash": p.usd.upstash,
                            "total": p.usd.total(),
                        },
                    },
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(usd: f64) -> Price {
        Price {
            usd,
            per: String::new(),
            source: String::new(),
        }
    }

    fn prices() -> Prices {
        Prices {
            read: "2026-12-01".into(),
            region: "us-east-1".into(),
            lambda_arm64_gb_second: price(0.0000133334),
            lambda_requests: price(0.20),
            api_gateway_http_requests: price(1.00),
            sqs_requests: price(0.40),
            dynamodb_write_request_units: price(0.625),
            dynamodb_read_request_units: price(0.125),
            upstash_commands: price(0.20),
        }
    }

    #[test]
    fn the_formula_adds_up_each_resource_per_million_units() {
        // A 100-event webhook: 8 ms warm, 20 ms cold, 256 MB, one request, one EVAL,
        // 200 write units (100 items, table and index), 2 read units (two tombstones).
        let inv = PerInvocation {
            units: 100.0,
            memory_mb: 256,
            warm_billed_ms: 8.0,
            cold_billed_ms: 20.0,
            api_gateway_requests: 1.0,
            sqs_requests: 0.0,
            dynamo_write_units: 200.0,
            dynamo_read_units: 2.0,
            upstash_commands: 1.0,
        };
        let p = per_million(&inv, 0.01, &prices());
        assert_eq!(p.invocations, 10_000.0);
        assert!((p.billed_ms - 8.12).abs() < 1e-9);
        // 10 000 x 8.12 ms x 0.25 GB = 20.3 GB-s.
        assert!((p.gb_seconds - 20.3).abs() < 1e-9);
        assert!((p.usd.lambda_duration - 20.3 * 0.0000133334).abs() < 1e-12);
        assert!((p.usd.lambda_requests - 0.002).abs() < 1e-12);
        assert!((p.usd.api_gateway - 0.01).abs() < 1e-12);
        assert_eq!(p.usd.sqs, 0.0);
        // 2 000 000 WRU x $0.625 + 20 000 RRU x $0.125 per million.
        assert!((p.usd.dynamodb - 1.2525).abs() < 1e-12);
        assert!((p.usd.upstash - 0.02).abs() < 1e-12);
        let sum = 20.3 * 0.0000133334 + 0.002 + 0.01 + 1.2525 + 0.02;
        assert!((p.usd.total() - sum).abs() < 1e-12);
    }

    #[test]
    fn numbers_are_grouped_and_percentiles_are_nearest_rank() {
        assert_eq!(grouped(1_000_000.0), "1 000 000");
        assert_eq!(grouped(999.0), "999");
        assert_eq!(grouped(12.5), "12.5");
        let values = [5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(percentile(&values, 50.0), 3.0);
        assert_eq!(percentile(&values, 95.0), 5.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }
}
