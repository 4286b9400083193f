//! Cold starts of the release `bootstrap` binaries against a local Lambda Runtime API
//! stand-in (see `dev_tools::coldstart` and `dev_tools::harness`); `scripts/coldstart` builds and runs it.
//!
//! `coldstart [--bin-dir target/lambda] [--runs 20] [--events-dir events]
//!            [--webhook-events 1000] [--only NAME,...] [--json FILE] [--log FILE]
//!            [--memory-webhook-bytes 2700000,6000000 [--any-status]]`
//!
//! `--memory-webhook-bytes` runs ably-events alone, on webhooks of number-array messages
//! of those sizes, for its peak RSS; `--any-status` records runs whatever they answer
//! (for a build that fails them; the log keeps each response). `--secrets-by-arn` stores
//! every secret in the stack's Secrets Manager (moto) and gives the functions only their
//! ARNs, so each cold start reads them as in AWS. `coldstart --help` lists every flag.
//!
//! Needs the local stack's settings in the environment (`.dev/stack.env`): the Upstash
//! proxy, DynamoDB Local, the table and the fake secrets. Ably is answered by a mock
//! started here. Each scenario gets one unrecorded run first (the binary into the page
//! cache), then `--runs` recorded ones; any failed run fails the whole command. Every
//! scenario writes to a table of its own (created and deleted here) and every run under a
//! Redis key prefix of its own.

use anyhow::{bail, Context as _};
use clap::builder::RangedU64ValueParser;
use clap::Parser;
use dev_tools::coldstart::{
    default_scenarios, memory_scenarios, run_once, summarise, table, to_json,
};
use dev_tools::harness::ably_mock;
use dev_tools::harness::args::{positive, CommonArgs};
use dev_tools::harness::env::{app_env, required};
use dev_tools::harness::events::{prepare_event, Secrets};

/// Cold starts of the release bootstraps against a local Lambda Runtime API stand-in.
#[derive(Parser)]
// scripts/coldstart passes --bin-dir and --log; a flag given again later wins.
#[command(name = "coldstart", args_override_self = true)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Recorded runs per scenario (after one unrecorded run).
    #[arg(long, default_value_t = 20, value_parser = positive)]
    runs: usize,
    /// Events in the large webhook scenario.
    #[arg(long, default_value_t = 1000,
          value_parser = RangedU64ValueParser::<usize>::new().range(1..=1000))]
    webhook_events: usize,
    /// Instead of the default scenarios, the peak memory of ably-events on webhooks of
    /// number-array messages of these sizes (bytes).
    #[arg(long, value_delimiter = ',', value_name = "BYTES,...")]
    memory_webhook_bytes: Vec<usize>,
    /// Records runs whatever they answer (the log keeps each response).
    #[arg(long)]
    any_status: bool,
    /// Stores every secret in the stack's Secrets Manager and gives the functions only
    /// their ARNs.
    #[arg(long)]
    secrets_by_arn: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let secrets = Secrets::from_env()?;
    for name in [
        "UPSTASH_REDIS_REST_URL",
        "AWS_ENDPOINT_URL_DYNAMODB",
        "CHAT_EVENTS_TABLE",
    ] {
        required(name)?;
    }

    let ably_url = ably_mock::start().await?;
    let session = format!("coldstart-{:08x}", rand::random::<u32>());
    let dynamo = chat_core::storage::dynamo::client();
    let secret_arns = if args.secrets_by_arn {
        dev_tools::harness::secrets::stored_by_arn(&session).await?
    } else {
        Vec::new()
    };

    let mut summaries = Vec::new();
    let scenarios = if args.memory_webhook_bytes.is_empty() {
        default_scenarios(&args.common.events_dir, args.webhook_events)
    } else {
        memory_scenarios(&args.memory_webhook_bytes, args.any_status)
    };
    for (index, scenario) in scenarios.into_iter().enumerate() {
        if !args.common.selects(&scenario.function, &scenario.name) {
            continue;
        }
        let bootstrap = args
            .common
            .bin_dir
            .join(&scenario.function)
            .join("bootstrap");
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
            let mut overrides: Vec<(&str, &str)> = vec![
                ("ABLY_REST_URL", &ably_url),
                ("REDIS_KEY_PREFIX", &prefix),
                ("CHAT_EVENTS_TABLE", &table),
            ];
            overrides.extend(secret_arns.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            let app = app_env(&overrides);
            let sample = run_once(
                &bootstrap,
                &scenario,
                &event,
                &app,
                args.common.log.as_deref(),
            )
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
        bail!("no scenario matched --only {}", args.common.only.join(","));
    }
    print!("{}", table(&summaries));
    if let Some(path) = args.common.json {
        std::fs::write(&path, serde_json::to_string_pretty(&to_json(&summaries))?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
