//! Drives the `ably-events` handler in process against the local stores (the settings of
//! `.dev/stack.env`): 50 concurrent senders deliver 20 000 events, 10% of the batches
//! twice, as signed Ably webhook batches or (`--source sqs`) as SQS event batches through
//! the Lambda entry point; whatever is refused is delivered again, as Ably and SQS do.
//! Then the stores are judged on what they hold (every event in DynamoDB exactly once, at
//! most once in its Redis list and present where the list limit allows, nothing foreign,
//! every delivery eventually accepted) and throughput and latency percentiles printed.
//! A fresh table and Redis key prefix per run, removed afterwards (unless `--keep`).
//!
//! `webhook-load [--source webhook|sqs] [--events N] [--senders N] [--batch-size N]
//!               [--sqs-batch N] [--conversations N] [--redeliver-percent N] [--seed N]
//!               [--keep]`   (scripts/load runs it)
//!
//! `--batch-size` is the events per webhook batch or per SQS message, `--sqs-batch` the
//! SQS messages per invocation (default 10).

use std::sync::Arc;

use anyhow::{bail, Context as _};
use chat_core::handlers::ably_events::{EventsConfig, EventsState};
use chat_core::platform::env::Env;
use dev_tools::webhook_load::{self, Load, LoadPlan, Signer, Source};

/// SQS's largest batch for a standard queue's event source mapping.
const MAX_SQS_BATCH: usize = 10_000;

struct Args {
    plan: LoadPlan,
    source: Source,
    keep: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut plan = LoadPlan::default();
    let mut sqs = false;
    let mut sqs_batch = 10;
    let mut keep = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut text = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        let mut value = |name: &str| -> anyhow::Result<u64> {
            let text = text(name)?;
            text.parse()
                .with_context(|| format!("{name}: not a number: {text}"))
        };
        match arg.as_str() {
            "--source" => match text(&arg)?.as_str() {
                "webhook" => sqs = false,
                "sqs" => sqs = true,
                other => bail!("--source: webhook or sqs, not {other}"),
            },
            "--events" => plan.events = value(&arg)? as usize,
            "--senders" => plan.senders = value(&arg)? as usize,
            "--batch-size" => plan.batch_size = value(&arg)? as usize,
            "--sqs-batch" => sqs_batch = value(&arg)? as usize,
            "--conversations" => plan.conversations = value(&arg)? as usize,
            "--redeliver-percent" => plan.redeliver_percent = value(&arg)? as u32,
            "--seed" => plan.seed = value(&arg)?,
            "--keep" => keep = true,
            other => {
                bail!("unknown argument {other}; see the top of tools/src/bin/webhook-load.rs")
            }
        }
    }
    if plan.events == 0 || plan.senders == 0 || plan.batch_size == 0 || plan.batch_size > 1000 {
        bail!("--events and --senders must be positive, --batch-size between 1 and 1000");
    }
    if sqs_batch == 0 || sqs_batch > MAX_SQS_BATCH {
        bail!("--sqs-batch must be between 1 and {MAX_SQS_BATCH}");
    }
    let source = if sqs {
        Source::Sqs { records: sqs_batch }
    } else {
        Source::Webhook
    };
    Ok(Args { plan, source, keep })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Args { plan, source, keep } = parse_args()?;
    // The handler's own logs only for problems; its metric lines still go to stdout.
    if std::env::var_os("RUST_LOG").is_none() {
        std::env::set_var("RUST_LOG", "warn");
    }
    chat_core::platform::telemetry::init();

    let run = format!("load-{:08x}", rand::random::<u32>());
    let mut config = EventsConfig::load(Env::from_process()).context("configuration")?;
    config.stores.table = run.clone();
    config.redis.key_prefix = format!("{run}:");
    let (key_name, secret) = config
        .webhook_keys
        .keys
        .first()
        .map(|(name, secret)| (name.clone(), secret.expose().to_owned()))
        .context("no webhook key configured")?;
    let signer = Signer { key_name, secret };
    let state = Arc::new(EventsState::new(config));
    dev_tools::table::ensure_chat_events_table(state.stores.archive.client(), &run).await?;

    let load = Arc::new(Load::new(&plan, source, &run));
    let order = webhook_load::schedule(&plan, load.len());
    eprintln!(
        "[load] {source}: {} batches, {} deliveries planned, table and prefix {run}",
        load.len(),
        order.len()
    );
    let stats =
        webhook_load::deliver(Arc::clone(&state), &signer, &plan, Arc::clone(&load), order).await;
    let verification = webhook_load::verify(&state, &load).await?;
    eprintln!("{}", webhook_load::report(&plan, &stats, &verification));

    if keep {
        eprintln!("[load] kept table {run} and Redis keys {run}:*");
    } else {
        webhook_load::clean_up(&state).await?;
    }
    let verdict = webhook_load::judge(&stats, &verification);
    if !verdict.passed() {
        bail!("verification failed: {}", verdict.failures.join("; "));
    }
    Ok(())
}
