//! Drives the `ably-events` handler in process against the local stores (the settings of
//! `.dev/stack.env`): 50 concurrent senders deliver 20 000 events in signed Ably batches,
//! 10% of the batches twice; then checks every event is in DynamoDB exactly once and at
//! most once in its Redis list, and prints throughput and latency percentiles.
//! A fresh table and Redis key prefix per run, removed afterwards (unless `--keep`).
//!
//! `webhook-load [--events N] [--senders N] [--batch-size N] [--conversations N]
//!               [--redeliver-percent N] [--seed N] [--keep]`   (scripts/load runs it)

use std::sync::Arc;

use anyhow::{bail, Context as _};
use chat_core::handlers::ably_events::{EventsConfig, EventsState};
use chat_core::platform::env::Env;
use dev_tools::webhook_load::{self, LoadPlan, Signer};

fn parse_args() -> anyhow::Result<(LoadPlan, bool)> {
    let mut plan = LoadPlan::default();
    let mut keep = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| -> anyhow::Result<u64> {
            let text = args
                .next()
                .with_context(|| format!("{name} needs a value"))?;
            text.parse()
                .with_context(|| format!("{name}: not a number: {text}"))
        };
        match arg.as_str() {
            "--events" => plan.events = value(&arg)? as usize,
            "--senders" => plan.senders = value(&arg)? as usize,
            "--batch-size" => plan.batch_size = value(&arg)? as usize,
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
    Ok((plan, keep))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (plan, keep) = parse_args()?;
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

    let batches = Arc::new(webhook_load::batches(&plan, &run));
    let order = webhook_load::schedule(&plan, batches.len());
    eprintln!(
        "[load] {} batches, {} deliveries planned, table and prefix {run}",
        batches.len(),
        order.len()
    );
    let stats = webhook_load::deliver(
        Arc::clone(&state),
        &signer,
        &plan,
        Arc::clone(&batches),
        order,
    )
    .await;
    let verification = webhook_load::verify(&state, &batches).await?;
    eprintln!("{}", webhook_load::report(&plan, &stats, &verification));

    if keep {
        eprintln!("[load] kept table {run} and Redis keys {run}:*");
    } else {
        webhook_load::clean_up(&state).await?;
    }
    if !webhook_load::passed(&stats, &verification) {
        bail!("verification failed");
    }
    Ok(())
}
