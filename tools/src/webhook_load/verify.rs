//! Reading back what the stores hold after a run, and removing the run's table and keys.

use std::collections::{BTreeMap, HashMap, HashSet};

use aws_sdk_dynamodb::types::AttributeValue;
use chat_core::handlers::ably_events::EventsState;
use serde_json::Value;

use super::Load;

/// Conversations per `LRANGE` pipeline, and events per `EXISTS` pipeline.
const LISTS_PER_PIPELINE: usize = 50;
const MARKERS_PER_PIPELINE: usize = 1000;

/// What the stores hold after a run.
#[derive(Debug, Clone, Default)]
pub struct Verification {
    /// Distinct events sent.
    pub expected: usize,
    /// Event items in the table (all, and distinct (conversation, id) pairs).
    pub archived: usize,
    pub archived_distinct: usize,
    pub missing_from_archive: usize,
    pub unexpected_in_archive: usize,
    /// Entries in the conversations' Redis lists, those of an event already listed, and
    /// those of no event of the run.
    pub cached: usize,
    pub cached_twice: usize,
    pub foreign_in_cache: usize,
    /// Events with a seen marker: the cache took them (the marker and the push are one
    /// step of the mirror script).
    pub taken_by_cache: usize,
    /// Events the cache took that are missing from a list below the limit (only a full
    /// list drops events: its oldest).
    pub lost_from_cache: usize,
    /// Conversations whose list is at the limit, and the limit (`REDIS_EVENT_MAX`).
    pub full_lists: usize,
    pub list_limit: usize,
    /// Per batch (index), its events the cache never took.
    pub never_cached: BTreeMap<usize, usize>,
}

impl Verification {
    pub fn never_cached_total(&self) -> usize {
        self.never_cached.values().sum()
    }

    /// Items in the table beyond one per distinct event.
    pub fn archived_duplicates(&self) -> usize {
        self.archived.saturating_sub(self.archived_distinct)
    }

    /// Every event in DynamoDB exactly once and nothing else there.
    pub fn archive_exact(&self) -> bool {
        self.archived == self.expected
            && self.archived_distinct == self.expected
            && self.missing_from_archive == 0
            && self.unexpected_in_archive == 0
    }
}

/// Reads back both stores and compares them with what `load` sent.
pub async fn verify(state: &EventsState, load: &Load) -> anyhow::Result<Verification> {
    // Each event and the batch it was sent in.
    let mut expected: HashMap<(&str, &str), usize> = HashMap::new();
    for index in 0..load.len() {
        for (conversation, id) in load.events(index) {
            expected.insert((conversation.as_str(), id.as_str()), index);
        }
    }
    let mut result = Verification {
        expected: expected.len(),
        list_limit: state.stores.cache.last_index() as usize + 1,
        ..Verification::default()
    };

    let archived = scan_events(state).await?;
    result.archived = archived.len();
    let distinct: HashSet<(&str, &str)> = archived
        .iter()
        .map(|(c, id)| (c.as_str(), id.as_str()))
        .collect();
    result.archived_distinct = distinct.len();
    result.missing_from_archive = expected.keys().filter(|e| !distinct.contains(*e)).count();
    result.unexpected_in_archive = distinct
        .iter()
        .filter(|e| !expected.contains_key(*e))
        .count();

    let marked = markers(state, &expected).await?;
    result.taken_by_cache = marked.len();
    for (event, batch) in &expected {
        if !marked.contains(event) {
            *result.never_cached.entry(*batch).or_insert(0) += 1;
        }
    }

    let mut by_conversation: HashMap<&str, HashSet<&str>> = HashMap::new();
    for (conversation, id) in expected.keys() {
        by_conversation.entry(conversation).or_default().insert(id);
    }
    let lists = lists(state, by_conversation.keys().copied()).await?;
    for (conversation, entries) in &lists {
        let ids = &by_conversation[conversation];
        let mut listed = HashSet::new();
        for id in entries {
            result.cached += 1;
            if !ids.contains(id.as_str()) {
                result.foreign_in_cache += 1;
            }
            if !listed.insert(id.as_str()) {
                result.cached_twice += 1;
            }
        }
        if entries.len() >= result.list_limit {
            result.full_lists += 1;
        } else {
            result.lost_from_cache += ids
                .iter()
                .filter(|id| marked.contains(&(conversation, id)) && !listed.contains(*id))
                .count();
        }
    }
    Ok(result)
}

/// The expected events whose seen marker exists.
async fn markers<'a>(
    state: &EventsState,
    expected: &HashMap<(&'a str, &'a str), usize>,
) -> anyhow::Result<HashSet<(&'a str, &'a str)>> {
    let events: Vec<(&str, &str)> = expected.keys().copied().collect();
    let mut marked = HashSet::new();
    for chunk in events.chunks(MARKERS_PER_PIPELINE) {
        let commands: Vec<Vec<String>> = chunk
            .iter()
            .map(|(conversation, id)| {
                vec![
                    "EXISTS".to_owned(),
                    state.stores.cache.keys().seen(conversation, id),
                ]
            })
            .collect();
        let replies = state.stores.cache.redis().pipeline(&commands).await?;
        for (event, reply) in chunk.iter().zip(replies) {
            let found = reply.map_err(|e| anyhow::anyhow!("EXISTS failed: {e}"))?;
            if found.as_i64() == Some(1) || found.as_str() == Some("1") {
                marked.insert(*event);
            }
        }
    }
    Ok(marked)
}

/// The event ids in each conversation's Redis list, newest first.
async fn lists<'a>(
    state: &EventsState,
    conversations: impl Iterator<Item = &'a str>,
) -> anyhow::Result<Vec<(&'a str, Vec<String>)>> {
    let conversations: Vec<&str> = conversations.collect();
    let mut lists = Vec::with_capacity(conversations.len());
    for chunk in conversations.chunks(LISTS_PER_PIPELINE) {
        let commands: Vec<Vec<String>> = chunk
            .iter()
            .map(|c| {
                vec![
                    "LRANGE".to_owned(),
                    state.stores.cache.keys().events(c),
                    "0".to_owned(),
                    "-1".to_owned(),
                ]
            })
            .collect();
        let replies = state.stores.cache.redis().pipeline(&commands).await?;
        for (conversation, reply) in chunk.iter().zip(replies) {
            let list = reply.map_err(|e| anyhow::anyhow!("LRANGE failed: {e}"))?;
            let ids = list
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|entry| {
                    let event: Value = entry
                        .as_str()
                        .and_then(|s| serde_json::from_str(s).ok())
                        .unwrap_or(Value::Null);
                    event["id"].as_str().unwrap_or_default().to_owned()
                })
                .collect();
            lists.push((*conversation, ids));
        }
    }
    Ok(lists)
}

/// (conversation, id) of every event item in the table, with 4 parallel scan segments.
async fn scan_events(state: &EventsState) -> anyhow::Result<Vec<(String, String)>> {
    const SEGMENTS: i32 = 4;
    let segments = (0..SEGMENTS).map(|segment| async move {
        let mut found = Vec::new();
        let mut start = None;
        // Each page is up to 1 MB; far more pages than any run writes.
        for _ in 0..100_000 {
            let page = state
                .stores
                .archive
                .client()
                .scan()
                .table_name(state.stores.archive.table())
                .segment(segment)
                .total_segments(SEGMENTS)
                .projection_expression("conversation_id, id")
                .set_exclusive_start_key(start)
                .send()
                .await?;
            let text = |item: &HashMap<String, AttributeValue>, name: &str| {
                item.get(name)
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default()
            };
            found.extend(
                page.items()
                    .iter()
                    .map(|item| (text(item, "conversation_id"), text(item, "id"))),
            );
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok::<_, anyhow::Error>(found),
            }
        }
        anyhow::bail!("table scan did not end")
    });
    let mut all = Vec::new();
    for segment in futures::future::join_all(segments).await {
        all.extend(segment?);
    }
    Ok(all)
}

/// Deletes the run's table and Redis keys.
pub async fn clean_up(state: &EventsState) -> anyhow::Result<()> {
    state
        .stores
        .archive
        .client()
        .delete_table()
        .table_name(state.stores.archive.table())
        .send()
        .await?;
    let pattern = format!("{}*", state.stores.cache.keys().prefix());
    let mut cursor = "0".to_owned();
    for _ in 0..100_000 {
        let reply = state
            .stores
            .cache
            .redis()
            .command(&["SCAN", &cursor, "MATCH", &pattern, "COUNT", "1000"])
            .await?;
        cursor = reply[0].as_str().unwrap_or("0").to_owned();
        let keys: Vec<String> = reply[1]
            .as_array()
            .map(|keys| {
                keys.iter()
                    .filter_map(|k| k.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if !keys.is_empty() {
            let mut del = vec!["DEL".to_owned()];
            del.extend(keys);
            state.stores.cache.redis().command(&del).await?;
        }
        if cursor == "0" {
            return Ok(());
        }
    }
    anyhow::bail!("SCAN did not end")
}
