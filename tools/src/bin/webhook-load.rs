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
//! SQS messages per invocation (default 10). `webhook-load --help` lists every flag.

use std::sync::Arc;

use anyhow::{bail, Context as _};
use chat_core::handlers::ably_events::{EventsConfig, EventsState};
use chat_core::platform::env::Env;
use clap::builder::RangedU64ValueParser;
use clap::{Parser, ValueEnum};
use dev_tools::harness::args::positive;
use dev_tools::webhook_load::{self, Load, LoadPlan, Signer, Source};

/// SQS's largest batch for a standard queue's event source mapping.
const MAX_SQS_BATCH: u64 = 10_000;

/// How the batches reach the handler.
#[derive(Clone, Copy, ValueEnum)]
enum Via {
    /// Signed Ably webhook batches, as API Gateway hands them over.
    Webhook,
    /// SQS event batches through the Lambda entry point.
    Sqs,
}

/// Load test of the ably-events handler against the local stores.
#[derive(Parser)]
#[command(name = "webhook-load")]
struct Args {
    #[arg(long, value_enum, default_value_t = Via::Webhook)]
    source: Via,
    /// Events delivered in all.
    #[arg(long, default_value_t = LoadPlan::default().events, value_parser = positive)]
    events: usize,
    /// Concurrent senders.
    #[arg(long, default_value_t = LoadPlan::default().senders, value_parser = positive)]
    senders: usize,
    /// Events per webhook batch, or per SQS message.
    #[arg(long, default_value_t = LoadPlan::default().batch_size,
          value_parser = RangedU64ValueParser::<usize>::new().range(1..=1000))]
    batch_size: usize,
    /// SQS messages per invocation.
    #[arg(long, default_value_t = 10,
          value_parser = RangedU64ValueParser::<usize>::new().range(1..=MAX_SQS_BATCH))]
    sqs_batch: usize,
    /// Conversations the events are spread over.
    #[arg(long, default_value_t = LoadPlan::default().conversations)]
    conversations: usize,
    /// Share of batches delivered a second time, in percent.
    #[arg(long, default_value_t = LoadPlan::default().redeliver_percent)]
    redeliver_percent: u32,
    /// Seeds the generated events and the delivery order.
    #[arg(long, default_value_t = LoadPlan::default().seed)]
    seed: u64,
    /// Keeps the table and the Redis keys afterwards.
    #[arg(long)]
    keep: bool,
}

impl Args {
    fn plan(&self) -> LoadPlan {
        LoadPlan {
            events: self.events,
            senders: self.senders,
            batch_size: self.batch_size,
            conversations: self.conversations,
            redeliver_percent: self.redeliver_percent,
            seed: self.seed,
        }
    }

    fn source(&self) -> Source {
        match self.source {
            Via::Webhook => Source::Webhook,
            Via::Sqs => Source::Sqs {
                records: self.sqs_batch,
            },
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (plan, source, keep) = (args.plan(), args.source(), args.keep);
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
