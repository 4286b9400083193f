//! The verdict on a run, from what the stores hold: every event in DynamoDB exactly once,
//! at most once in its Redis list (and present where the list limit allows), nothing
//! foreign, and every delivery eventually accepted. The counters of the handler's answers
//! are reported; they decide nothing once a delivery was refused or the cache was down,
//! because a refused delivery may have cached its events before DynamoDB failed.

use std::fmt;
use std::time::Duration;

use super::deliver::{ABLY_DELIVERIES, SQS_MAX_RECEIVES};
use super::{LoadPlan, RunStats, Source, Verification};

/// What the run proved, or every check that failed, with its counts.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub failures: Vec<String>,
    summary: String,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.passed() {
            write!(f, "PASS: {}", self.summary)
        } else {
            write!(f, "FAIL: {}", self.failures.join("; "))
        }
    }
}

/// Judges a run on what the stores hold (see the module docs).
pub fn judge(stats: &RunStats, v: &Verification) -> Verdict {
    let mut failures = Vec::new();
    if stats.unsettled > 0 {
        failures.push(match stats.source {
            Source::Webhook => format!(
                "{} of {} batches never answered 200 in {ABLY_DELIVERIES} deliveries",
                stats.unsettled, stats.units
            ),
            Source::Sqs { .. } => format!(
                "{} of {} SQS records still listed as failures at their last receive ({SQS_MAX_RECEIVES})",
                stats.unsettled, stats.units
            ),
        });
    }
    if !v.archive_exact() {
        failures.push(format!(
            "dynamodb holds {} event items ({} distinct) for {} events: {} missing, {} unexpected, {} duplicate items",
            v.archived,
            v.archived_distinct,
            v.expected,
            v.missing_from_archive,
            v.unexpected_in_archive,
            v.archived_duplicates()
        ));
    }
    if v.cached_twice > 0 {
        failures.push(format!("redis lists hold {} entries twice", v.cached_twice));
    }
    if v.foreign_in_cache > 0 {
        failures.push(format!(
            "redis lists hold {} entries of no event of the run",
            v.foreign_in_cache
        ));
    }
    if v.lost_from_cache > 0 {
        failures.push(format!(
            "{} events the cache took are missing from lists below the {}-entry limit",
            v.lost_from_cache, v.list_limit
        ));
    }
    let uncached_confirmed: usize = v
        .never_cached
        .iter()
        .filter(|(batch, _)| stats.cache_confirmed.contains(batch))
        .map(|(_, n)| n)
        .sum();
    if uncached_confirmed > 0 {
        failures.push(format!(
            "{uncached_confirmed} events never reached the cache although a 200 answer confirmed it took their batch"
        ));
    }
    // Only a run without refusals and with the cache always up pushes each event exactly
    // once in a delivery that reports it.
    if pushed_counter_judged(stats) && stats.pushed_to_cache != v.expected as u64 {
        failures.push(format!(
            "200 answers report {} events newly cached for {} events, with no refusal and the cache always up",
            stats.pushed_to_cache, v.expected
        ));
    }
    let settled = match stats.source {
        Source::Webhook => "every batch answered 200",
        Source::Sqs { .. } => "every SQS record eventually not listed as a failure",
    };
    let uncached = match v.never_cached_total() {
        0 => String::new(),
        n => format!(" ({n} never cached: their deliveries found the cache unavailable)"),
    };
    let summary = format!(
        "every event in DynamoDB exactly once; at most once in Redis and present where the \
         {}-entry list limit allows{uncached}; {settled}",
        v.list_limit
    );
    Verdict { failures, summary }
}

/// The pushed counter decides only for webhook runs where nothing was refused and every
/// 200 answer confirmed the cache.
fn pushed_counter_judged(stats: &RunStats) -> bool {
    stats.source == Source::Webhook
        && stats.refusals() == 0
        && stats.uncached_deliveries == 0
        && stats.unsettled == 0
}

/// Whether the run passed ([`judge`]).
pub fn passed(stats: &RunStats, verification: &Verification) -> bool {
    judge(stats, verification).passed()
}

/// A run's numbers and verdict, for people.
pub fn report(plan: &LoadPlan, stats: &RunStats, v: &Verification) -> String {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let seconds = stats.elapsed.as_secs_f64().max(f64::EPSILON);
    let in_flight = plan.senders.min(stats.batches + stats.redeliveries);
    let mut lines = Vec::new();
    match stats.source {
        Source::Webhook => {
            let statuses: Vec<String> = stats
                .statuses
                .iter()
                .map(|(s, n)| format!("{s}: {n}"))
                .collect();
            lines.push(format!(
                "webhook load: {} events in batches of {} over {} conversations, {} concurrent senders, {}% redelivered",
                plan.events, plan.batch_size, plan.conversations, plan.senders, plan.redeliver_percent
            ));
            lines.push(format!(
                "deliveries   {} for {} batches ({} redeliveries, {} retries after a refusal; {})",
                stats.deliveries,
                stats.batches,
                stats.redeliveries,
                stats.retries,
                statuses.join(", ")
            ));
        }
        Source::Sqs { records } => {
            lines.push(format!(
                "sqs load: {} events, {} per record, {records} records per invocation, over {} conversations, {} concurrent senders, {}% of invocations redelivered",
                plan.events, plan.batch_size, plan.conversations, plan.senders, plan.redeliver_percent
            ));
            lines.push(format!(
                "invocations  {} for {} batches ({} redeliveries, {} retries of listed records; at most {in_flight} in flight)",
                stats.deliveries, stats.batches, stats.redeliveries, stats.retries
            ));
            lines.push(format!(
                "records      {} sent for {} messages, {} listed in batchItemFailures, {} invocation errors",
                stats.records_sent, stats.units, stats.records_refused, stats.invocation_errors
            ));
        }
    }
    let (call, calls) = match stats.source {
        Source::Webhook => ("delivery", "deliveries"),
        Source::Sqs { .. } => ("invocation", "invocations"),
    };
    lines.push(format!(
        "time         {:.2} s: {:.0} events/s, {:.1} {calls}/s",
        seconds,
        plan.events as f64 / seconds,
        stats.deliveries as f64 / seconds,
    ));
    lines.push(format!(
        "latency      per {call} p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(stats.latency.p50),
        ms(stats.latency.p95),
        ms(stats.latency.p99),
        ms(stats.latency.max)
    ));
    lines.push(format!(
        "dynamodb     {} items, {} distinct, {} missing, {} unexpected (expected {})",
        v.archived,
        v.archived_distinct,
        v.missing_from_archive,
        v.unexpected_in_archive,
        v.expected
    ));
    let never_note = match (stats.source, v.never_cached_total()) {
        (_, 0) => "",
        (Source::Webhook, _) => " (answered with the cache unavailable)",
        (Source::Sqs { .. }, _) => {
            " (SQS answers do not say whether the cache took a record: reported, not judged)"
        }
    };
    lines.push(format!(
        "redis        {} list entries ({} lists at the {}-entry limit), {} twice, {} foreign; \
         {} of {} events taken by the cache, {} lost, {} never{never_note}",
        v.cached,
        v.full_lists,
        v.list_limit,
        v.cached_twice,
        v.foreign_in_cache,
        v.taken_by_cache,
        v.expected,
        v.lost_from_cache,
        v.never_cached_total()
    ));
    if stats.source == Source::Webhook {
        let note = if pushed_counter_judged(stats) {
            String::new()
        } else {
            format!(
                " (not judged: {} refused deliveries may have cached their events before the refusal, \
                 so their retries count them as duplicates)",
                stats.refusals()
            )
        };
        lines.push(format!(
            "answers      {} events newly cached per the 200 answers, {} answered without the cache{note}",
            stats.pushed_to_cache, stats.uncached_deliveries
        ));
    }
    if let Some(refusal) = &stats.first_refusal {
        lines.push(format!("first refusal {refusal}"));
    }
    lines.push(format!("verdict      {}", judge(stats, v)));
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    /// The stores after a run of `events` events in batches of 50, every event in
    /// DynamoDB once and in Redis once, every list below the limit.
    fn clean_stores(events: usize) -> Verification {
        Verification {
            expected: events,
            archived: events,
            archived_distinct: events,
            cached: events,
            taken_by_cache: events,
            list_limit: 100,
            ..Verification::default()
        }
    }

    /// 400 webhook batches; `refused` of them answered 503 once after their cache half
    /// took their 50 events, then 200 with all 50 as duplicates.
    fn webhook_run(refused: usize) -> RunStats {
        RunStats {
            source: Source::Webhook,
            batches: 400,
            units: 400,
            deliveries: 440 + refused,
            redeliveries: 40,
            retries: refused,
            statuses: BTreeMap::from([(200, 440), (503, refused)]),
            pushed_to_cache: 20_000 - 50 * refused as u64,
            cache_confirmed: (0..400).collect(),
            ..RunStats::default()
        }
    }

    #[test]
    fn a_delivery_refused_after_its_cache_half_succeeded_still_passes() {
        let stats = webhook_run(7);
        let stores = clean_stores(20_000);
        let verdict = judge(&stats, &stores);
        assert!(verdict.passed(), "{verdict}");
        assert!(verdict
            .to_string()
            .starts_with("PASS: every event in DynamoDB exactly once"));
        let report = report(&LoadPlan::default(), &stats, &stores);
        assert!(report.contains("19650 events newly cached"), "{report}");
        assert!(
            report.contains("not judged: 7 refused deliveries"),
            "{report}"
        );
    }

    #[test]
    fn without_refusals_the_pushed_counter_must_match() {
        let mut stats = webhook_run(0);
        assert!(passed(&stats, &clean_stores(20_000)));
        stats.pushed_to_cache = 19_999;
        let verdict = judge(&stats, &clean_stores(20_000));
        assert_eq!(
            verdict.failures,
            ["200 answers report 19999 events newly cached for 20000 events, with no refusal and the cache always up"]
        );
    }

    #[test]
    fn each_failed_check_is_named_with_its_counts() {
        let mut stats = webhook_run(7);
        stats.unsettled = 2;
        let mut stores = clean_stores(20_000);
        stores.archived = 19_950;
        stores.archived_distinct = 19_950;
        stores.missing_from_archive = 50;
        stores.cached_twice = 3;
        stores.foreign_in_cache = 1;
        stores.lost_from_cache = 4;
        stores.never_cached = BTreeMap::from([(12, 50)]);
        stores.taken_by_cache = 19_950;
        let verdict = judge(&stats, &stores);
        assert_eq!(
            verdict.failures,
            [
                "2 of 400 batches never answered 200 in 6 deliveries",
                "dynamodb holds 19950 event items (19950 distinct) for 20000 events: 50 missing, 0 unexpected, 0 duplicate items",
                "redis lists hold 3 entries twice",
                "redis lists hold 1 entries of no event of the run",
                "4 events the cache took are missing from lists below the 100-entry limit",
                "50 events never reached the cache although a 200 answer confirmed it took their batch",
            ]
        );
        assert!(verdict.to_string().starts_with("FAIL: 2 of 400 batches"));
        assert!(!verdict.to_string().contains("never stored"));
    }

    #[test]
    fn events_never_cached_pass_only_where_no_answer_confirmed_the_cache() {
        let mut stats = webhook_run(0);
        stats.cache_confirmed = (1..400).collect();
        stats.uncached_deliveries = 1;
        stats.pushed_to_cache = 19_950;
        let mut stores = clean_stores(20_000);
        stores.never_cached = BTreeMap::from([(0, 50)]);
        stores.taken_by_cache = 19_950;
        stores.cached = 19_950;
        let verdict = judge(&stats, &stores);
        assert!(verdict.passed(), "{verdict}");
        assert!(verdict.to_string().contains("50 never cached"), "{verdict}");

        stats.cache_confirmed = BTreeSet::from([0]);
        assert!(!passed(&stats, &stores));
    }

    #[test]
    fn sqs_records_listed_until_their_last_receive_fail_the_run() {
        let stats = RunStats {
            source: Source::Sqs { records: 10 },
            batches: 40,
            units: 400,
            records_sent: 410,
            records_refused: 10,
            unsettled: 1,
            ..RunStats::default()
        };
        let verdict = judge(&stats, &clean_stores(20_000));
        assert_eq!(
            verdict.failures,
            ["1 of 400 SQS records still listed as failures at their last receive (5)"]
        );
        let settled = RunStats {
            unsettled: 0,
            ..stats
        };
        let verdict = judge(&settled, &clean_stores(20_000));
        assert!(verdict.passed(), "{verdict}");
        assert!(verdict
            .to_string()
            .ends_with("every SQS record eventually not listed as a failure"));
    }
}
