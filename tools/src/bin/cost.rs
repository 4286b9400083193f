//! Cost per million events, measured (see `dev_tools::cost`); `scripts/cost` runs it.
//!
//! `cost --prices FILE [--bin-dir target/lambda] [--events-dir events]
//!       [--template template.yaml] [--runs 5] [--warm 20] [--cold-share 0.01]
//!       [--only NAME,...] [--legacy-index] [--json FILE] [--log FILE]`
//!
//! Needs the local stack's settings in the environment (`.dev/stack.env`). Ably is
//! answered by a mock started here; Upstash and DynamoDB are reached through counting
//! forwarders for each scenario's counted process, directly for the timed ones. Every
//! scenario writes to a table of its own (created and deleted here), every process under a
//! Redis key prefix of its own. Prints the Markdown tables: measurements, use per million
//! units, dollars per million units and the prices. `cost --help` lists every flag.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use clap::Parser;
use dev_tools::cost::price::{self, Prices};
use dev_tools::cost::{configured_memory_mb, default_scenarios, measure, Setup};
use dev_tools::harness::ably_mock;
use dev_tools::harness::args::{positive, CommonArgs};
use dev_tools::harness::env::required;
use dev_tools::harness::events::Secrets;
use dev_tools::harness::meter::{self, Meter, Store};

/// Cost per million events, measured against the local stack.
#[derive(Parser)]
// scripts/cost passes --bin-dir and --log; a flag given again later wins.
#[command(name = "cost", args_override_self = true)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// The prices (JSON; scripts/cost writes it).
    #[arg(long, value_name = "FILE")]
    prices: PathBuf,
    /// Where each function's MemorySize is read.
    #[arg(long, default_value = "template.yaml")]
    template: PathBuf,
    /// Timed processes per scenario (each one cold and `--warm` warm invocations).
    #[arg(long, default_value_t = 5, value_parser = positive)]
    runs: usize,
    /// Warm invocations per process.
    #[arg(long, default_value_t = 20, value_parser = positive)]
    warm: usize,
    /// The share of invocations that are cold starts, between 0 and 1.
    #[arg(long, default_value_t = 0.01, value_parser = share)]
    cold_share: f64,
    /// Measure against the table as it was before the sparse `reports` index: with the
    /// `by_type` index of every event, for a before/after comparison.
    #[arg(long)]
    legacy_index: bool,
}

fn share(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(share) if (0.0..=1.0).contains(&share) => Ok(share),
        Ok(_) => Err("must be between 0 and 1".to_owned()),
        Err(err) => Err(err.to_string()),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let prices: Prices = serde_json::from_str(
        &std::fs::read_to_string(&args.prices)
            .with_context(|| format!("reading {}", args.prices.display()))?,
    )
    .with_context(|| format!("parsing {}", args.prices.display()))?;
    let template = std::fs::read_to_string(&args.template)
        .with_context(|| format!("reading {}", args.template.display()))?;
    let secrets = Secrets::from_env()?;
    let upstash = required("UPSTASH_REDIS_REST_URL")?;
    let dynamodb = required("AWS_ENDPOINT_URL_DYNAMODB")?;
    required("CHAT_EVENTS_TABLE")?;

    let ably_url = ably_mock::start().await?;
    let meter = Arc::new(Meter::default());
    let upstash_meter_url = meter::start(Store::Upstash, &upstash, &meter).await?;
    let dynamodb_meter_url = meter::start(Store::DynamoDb, &dynamodb, &meter).await?;
    let session = format!("cost-{:08x}", rand::random::<u32>());
    let dynamo = chat_core::storage::dynamo::client();
    let setup = Setup {
        bin_dir: &args.common.bin_dir,
        secrets: &secrets,
        ably_url: &ably_url,
        upstash_meter_url: &upstash_meter_url,
        dynamodb_meter_url: &dynamodb_meter_url,
        meter: Arc::clone(&meter),
        session: &session,
        runs: args.runs,
        warm: args.warm,
        log: args.common.log.as_deref(),
    };

    let mut measured = Vec::new();
    for (index, scenario) in default_scenarios(&args.common.events_dir)
        .into_iter()
        .enumerate()
    {
        if !args.common.selects(&scenario.function, &scenario.name) {
            continue;
        }
        let memory = configured_memory_mb(&template, &scenario.function).with_context(|| {
            format!(
                "no MemorySize for {} in {}",
                scenario.function,
                args.template.display()
            )
        })?;
        eprintln!(
            "[cost] {}: 1 counted + {} timed processes of 1 cold + {} warm invocations",
            scenario.name, args.runs, args.warm
        );
        // A fresh table per scenario, so earlier scenarios' items do not slow later ones.
        let table = format!("{session}-{index}");
        let created = if args.legacy_index {
            dev_tools::table::ensure_legacy_chat_events_table(&dynamo, &table).await
        } else {
            dev_tools::table::ensure_chat_events_table(&dynamo, &table).await
        };
        created.with_context(|| format!("creating table {table}"))?;
        let result = measure(&scenario, memory, &table, &setup).await;
        if let Err(err) = dynamo.delete_table().table_name(&table).send().await {
            eprintln!("[cost] could not delete table {table}: {err}");
        }
        measured.push(result?);
    }
    if measured.is_empty() {
        bail!("no scenario matched --only {}", args.common.only.join(","));
    }

    println!("Measured (per invocation; the counted process's warm invocations for the counts):\n");
    println!("{}", price::measured_table(&measured));
    println!("Per million units:\n");
    println!(
        "{}",
        price::usage_table(&measured, args.cold_share, &prices)
    );
    println!("Dollars per million units:\n");
    println!(
        "{}",
        price::dollars_table(&measured, args.cold_share, &prices)
    );
    print!("{}", price::prices_table(&prices));
    if let Some(path) = args.common.json {
        let json = price::to_json(&measured, args.cold_share, &prices);
        std::fs::write(&path, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
