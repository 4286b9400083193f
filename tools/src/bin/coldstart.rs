//! Cold starts of the release `bootstrap` binaries against a local Lambda Runtime API
//! stand-in (see `dev_tools::coldstart`); `scripts/coldstart` builds and runs it.
//!
//! `coldstart [--bin-dir target/lambda] [--runs 20] [--events-dir events]
//!            [--webhook-events 1000] [--only NAME,...] [--json FILE] [--log FILE]`
//!
//! Needs the local stack's settings in the environment (`.dev/stack.env`): the Upstash
//! proxy, DynamoDB Local, the table and the fake secrets. Ably is answered by a mock
//! started here. Each scenario gets one unrecorded run first (the binary into the page
//! cache), then `--runs` recorded ones; any failed run fails the whole command. Every
//! scenario writes to a table of its own (created and deleted here) and every run under a
//! Redis key prefix of its own.

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use dev_tools::coldstart::{
    app_env, default_scenarios, prepare_event, run_once, serve_ably_mock, summarise, table,
    to_json, Secrets,
};

struct Args {
    bin_dir: PathBuf,
    runs: usize,
    events_dir: PathBuf,
    webhook_events: usize,
    only: Vec<String>,
    json: Option<PathBuf>,
    log: Option<PathBuf>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        bin_dir: PathBuf::from("target/lambda"),
        runs: 20,
        events_dir: PathBuf::from("events"),
        webhook_events: 1000,
        only: Vec::new(),
        json: None,
        log: None,
    };
    let mut argv = std::env::args().skip(1);
    while let Some(flag) = argv.next() {
        let mut value = || argv.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--bin-dir" => args.bin_dir = value()?.into(),
            "--runs" => args.runs = value()?.parse().context("--runs")?,
            "--events-dir" => args.events_dir = value()?.into(),
            "--webhook-events" => {
                args.webhook_events = value()?.parse().context("--webhook-events")?
            }
            "--only" => args.only = value()?.split(',').map(str::to_owned).collect(),
            "--json" => args.json = Some(value()?.into()),
            "--log" => args.log = Some(value()?.into()),
            other => bail!("unknown argument {other}; see the top of tools/src/bin/coldstart.rs"),
        }
    }
    if args.runs == 0 || args.webhook_events == 0 || args.webhook_events > 1000 {
        bail!("--runs must be positive, --webhook-events between 1 and 1000");
    }
    Ok(args)
}

fn required(name: &str) -> anyhow::Result<String> {
    std::env::var(name)
        .with_context(|| format!("missing {name}: source .dev/stack.env (scripts/stack up) first"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let secrets = Secrets {
        jwt_secret: required("JWT_SECRET")?,
        ably_api_key: required("ABLY_API_KEY")?,
    };
    for name in [
        "UPSTASH_REDIS_REST_URL",
        "AWS_ENDPOINT_URL_DYNAMODB",
        "CHAT_EVENTS_TABLE",
    ] {
        required(name)?;
    }

    let ably = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let ably_url = format!("http://{}", ably.local_addr()?);
    tokio::spawn(serve_ably_mock(ably));
    let session = format!("coldstart-{:08x}", rand::random::<u32>());
    let dynamo = chat_core::storage::dynamo::client();

    let mut summaries = Vec::new();
    let scenarios = default_scenarios(&args.events_dir, args.webhook_events);
    for (index, scenario) in scenarios.into_iter().enumerate() {
        if !args.only.is_empty()
            && !args
                .only
                .iter()
                .any(|o| o == &scenario.function || o == &scenario.name)
        {
            continue;
        }
        let bootstrap = args.bin_dir.join(&scenario.function).join("bootstrap");
        let bytes = std::fs::metadata(&bootstrap)
            .with_context(|| format!("{}", bootstrap.display()))?
            .len();
        eprintln!(
            "[coldstart] {} ({} runs + 1 unrecorded)",
            scenario.name, args.runs
        );
        // A fresh table per scenario: DynamoDB Local's DescribeTable (ably-stats) slows
        // down as a table fills, so earlier scenarios must not weigh on later ones.
        let table = format!("{session}-{index}");
        dev_tools::table::ensure_chat_events_table(&dynamo, &table)
            .await
            .with_context(|| format!("creating table {table}"))?;
        let mut samples = Vec::with_capacity(args.runs);
        for run in 0..=args.runs {
            let run_id = format!("{session}-{index}-{run}");
            let event = prepare_event(&scenario.event, &secrets, &run_id)?;
            // Every run its own Redis key prefix: rate limits and caches start empty, as
            // for a new caller, and runs never see each other's data.
            let prefix = format!("{run_id}:");
            let app = app_env(&[
                ("ABLY_REST_URL", &ably_url),
                ("REDIS_KEY_PREFIX", &prefix),
                ("CHAT_EVENTS_TABLE", &table),
            ]);
            let sample = run_once(&bootstrap, &scenario, &event, &app, args.log.as_deref())
                .await
                .with_context(|| format!("{} run {run}", scenario.name))?;
            if run > 0 {
                samples.push(sample);
            }
        }
        if let Err(err) = dynamo.delete_table().table_name(&table).send().await {
            eprintln!("[coldstart] could not delete table {table}: {err}");
        }
        summaries.extend(summarise(&scenario.name, &samples, bytes));
    }
    if summaries.is_empty() {
        bail!("no scenario matched --only {}", args.only.join(","));
    }
    print!("{}", table(&summaries));
    if let Some(path) = args.json {
        std::fs::write(&path, serde_json::to_string_pretty(&to_json(&summaries))?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
