//! Cost per million events, measured (see `dev_tools::cost`); `scripts/cost` runs it.
//!
//! `cost --prices FILE [--bin-dir target/lambda] [--events-dir events]
//!       [--template template.yaml] [--runs 5] [--warm 20] [--cold-share 0.01]
//!       [--only NAME,...] [--json FILE] [--log FILE]`
//!
//! Needs the local stack's settings in the environment (`.dev/stack.env`). Ably is
//! answered by a mock started here; Upstash and DynamoDB are reached through counting
//! forwarders for each scenario's counted process, directly for the timed ones. Every
//! scenario writes to a table of its own (created and deleted here), every process under a
//! Redis key prefix of its own. Prints the Markdown tables: measurements, use per million
//! units, dollars per million units and the prices.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use dev_tools::coldstart::{serve_ably_mock, Secrets};
use dev_tools::cost::meter::{self, Meter, Store};
use dev_tools::cost::price::{self, Prices};
use dev_tools::cost::{configured_memory_mb, default_scenarios, measure, Setup};

struct Args {
    prices: PathBuf,
    bin_dir: PathBuf,
    events_dir: PathBuf,
    template: PathBuf,
    runs: usize,
    warm: usize,
    cold_share: f64,
    only: Vec<String>,
    json: Option<PathBuf>,
    log: Option<PathBuf>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut prices = None;
    let mut args = Args {
        prices: PathBuf::new(),
        bin_dir: PathBuf::from("target/lambda"),
        events_dir: PathBuf::from("events"),
        template: PathBuf::from("template.yaml"),
        runs: 5,
        warm: 20,
        cold_share: 0.01,
        only: Vec::new(),
        json: None,
        log: None,
    };
    let mut argv = std::env::args().skip(1);
    while let Some(flag) = argv.next() {
        let mut value = || argv.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--prices" => prices = Some(PathBuf::from(value()?)),
            "--bin-dir" => args.bin_dir = value()?.into(),
            "--events-dir" => args.events_dir = value()?.into(),
            "--template" => args.template = value()?.into(),
            "--runs" => args.runs = value()?.parse().context("--runs")?,
            "--warm" => args.warm = value()?.parse().context("--warm")?,
            "--cold-share" => args.cold_share = value()?.parse().context("--cold-share")?,
            "--only" => args.only = value()?.split(',').map(str::to_owned).collect(),
            "--json" => args.json = Some(value()?.into()),
            "--log" => args.log = Some(value()?.into()),
            other => bail!("unknown argument {other}; see the top of tools/src/bin/cost.rs"),
        }
    }
    args.prices = prices.context("--prices FILE is required (scripts/cost writes it)")?;
    if args.runs == 0 || args.warm == 0 || !(0.0..=1.0).contains(&args.cold_share) {
        bail!("--runs and --warm must be positive, --cold-share between 0 and 1");
    }
    Ok(args)
}

fn required(name: &str) -> anyhow::Result<String> {
    std::env::var(name)
        .with_context(|| format!("missing {name}: source .dev/stack.env (scripts/stack up) first"))
}

/// Starts a counting forwarder in front of `upstream` and answers its URL.
async fn forwarder(store: Store, upstream: String, meter: &Arc<Meter>) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(meter::serve(
        listener,
        store,
        upstream.trim_end_matches('/').to_owned(),
        Arc::clone(meter),
    ));
    Ok(url)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let prices: Prices = serde_json::from_str(
        &std::fs::read_to_string(&args.prices)
            .with_context(|| format!("reading {}", args.prices.display()))?,
    )
    .with_context(|| format!("parsing {}", args.prices.display()))?;
    let template = std::fs::read_to_string(&args.template)
        .with_context(|| format!("reading {}", args.template.display()))?;
    let secrets = Secrets {
        jwt_secret: required("JWT_SECRET")?,
        ably_api_key: required("ABLY_API_KEY")?,
    };
    let upstash = required("UPSTASH_REDIS_REST_URL")?;
    let dynamodb = required("AWS_ENDPOINT_URL_DYNAMODB")?;
    required("CHAT_EVENTS_TABLE")?;

    let ably = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let ably_url = format!("http://{}", ably.local_addr()?);
    tokio::spawn(serve_ably_mock(ably));
    let meter = Arc::new(Meter::default());
    let upstash_meter_url = forwarder(Store::Upstash, upstash, &meter).await?;
    let dynamodb_meter_url = forwarder(Store::DynamoDb, dynamodb, &meter).await?;
    let session = format!("cost-{:08x}", rand::random::<u32>());
    let dynamo = chat_core::storage::dynamo::client();
    let setup = Setup {
        bin_dir: &args.bin_dir,
        secrets: &secrets,
        ably_url: &ably_url,
        upstash_meter_url: &upstash_meter_url,
        dynamodb_meter_url: &dynamodb_meter_url,
        meter: Arc::clone(&meter),
        session: &session,
        runs: args.runs,
        warm: args.warm,
        log: args.log.as_deref(),
    };

    let mut measured = Vec::new();
    for (index, scenario) in default_scenarios(&args.events_dir).into_iter().enumerate() {
        if !args.only.is_empty()
            && !args
                .only
                .iter()
                .any(|o| o == &scenario.function || o == &scenario.name)
        {
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
        dev_tools::table::ensure_chat_events_table(&dynamo, &table)
            .await
            .with_context(|| format!("creating table {table}"))?;
        let result = measure(&scenario, memory, &table, &setup).await;
        if let Err(err) = dynamo.delete_table().table_name(&table).send().await {
            eprintln!("[cost] could not delete table {table}: {err}");
        }
        measured.push(result?);
    }
    if measured.is_empty() {
        bail!("no scenario matched --only {}", args.only.join(","));
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
    if let Some(path) = args.json {
        let json = price::to_json(&measured, args.cold_share, &prices);
        std::fs::write(&path, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
