//! The archive's reads: a conversation's newest entries, the entries after a polling
//! cursor, the entries of one message, and the report-worthy events of every
//! conversation from the sparse `reports` index.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::events::ChatEvent;
use crate::storage::archive::{describe_sdk_error, ArchiveError, EventArchive};
use crate::storage::dynamo::{PARTITION_KEY, REPORTS_INDEX, REPORT_KEY, SORT_KEY, TTL_ATTRIBUTE};
use crate::storage::item::{item_event, report_partition};

/// The attribute holding a message's serial.
const SERIAL_ATTRIBUTE: &str = "serial";

impl EventArchive {
    /// The newest `limit` unexpired trusted events of a conversation, newest first.
    pub async fn recent(
        &self,
        conversation_id: &str,
        limit: usize,
        now_secs: i64,
    ) -> Result<Vec<ChatEvent>, ArchiveError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :c")
            .filter_expression("#ttl > :now")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":c", AttributeValue::S(conversation_id.to_owned()))
            .expression_attribute_values(":now", AttributeValue::N(now_secs.to_string()))
            .scan_index_forward(false)
            .limit((limit * 2).clamp(10, 1000) as i32);
        Self::collect(query, limit, |event| event.trusted).await
    }

    /// The events of `query`, page after page, until there are `limit` of them or the
    /// partition ends.
    async fn collect(
        query: QueryFluentBuilder,
        limit: usize,
        keep: fn(&ChatEvent) -> bool,
    ) -> Result<Vec<ChatEvent>, ArchiveError> {
        let mut events = Vec::with_capacity(limit);
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = query
                .clone()
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| ArchiveError::Request(describe_sdk_error(&e)))?;
            for item in page.items() {
                if let Some(event) = item_event(item).filter(keep) {
                    events.push(event);
                }
                if events.len() == limit {
                    return Ok(events);
                }
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(events),
            }
        }
    }

    /// At most `limit` unexpired events of a conversation strictly after `after` (a sort
    /// key), oldest first, trusted or not (the reader withholds the untrusted ones and
    /// moves its cursor past them). Strongly consistent, so that an event stored before the read
    /// cannot be skipped by a client whose cursor then moves past it.
    pub async fn after(
        &self,
        conversation_id: &str,
        after: Option<&str>,
        limit: usize,
        now_secs: i64,
    ) -> Result<Vec<ChatEvent>, ArchiveError> {
        let mut names = HashMap::from([
            ("#pk".to_owned(), PARTITION_KEY.to_owned()),
            ("#ttl".to_owned(), TTL_ATTRIBUTE.to_owned()),
        ]);
        let mut values = HashMap::from([
            (
                ":c".to_owned(),
                AttributeValue::S(conversation_id.to_owned()),
            ),
            (":now".to_owned(), AttributeValue::N(now_secs.to_string())),
        ]);
        let condition = match after {
            Some(key) => {
                names.insert("#sk".to_owned(), SORT_KEY.to_owned());
                values.insert(":after".to_owned(), AttributeValue::S(key.to_owned()));
                "#pk = :c AND #sk > :after"
            }
            None => "#pk = :c",
        };
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression(condition)
            .filter_expression("#ttl > :now")
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .scan_index_forward(true)
            .consistent_read(true)
            .limit(limit.clamp(1, 1000) as i32);
        Self::collect(query, limit, |_| true).await
    }

    /// The unexpired entries of one message (by `serial`) of a conversation, oldest
    /// first, from the time of the message (`since`) to the position `until` (an event
    /// key; `None`: to the end), trusted or not. Strongly consistent, as [`Self::after`].
    pub async fn message_entries(
        &self,
        conversation_id: &str,
        serial: &str,
        since: &str,
        until: Option<&str>,
        now_secs: i64,
    ) -> Result<Vec<ChatEvent>, ArchiveError> {
        let mut values = HashMap::from([
            (
                ":c".to_owned(),
                AttributeValue::S(conversation_id.to_owned()),
            ),
            (":now".to_owned(), AttributeValue::N(now_secs.to_string())),
            (":s".to_owned(), AttributeValue::S(serial.to_owned())),
            (":since".to_owned(), AttributeValue::S(since.to_owned())),
        ]);
        let condition = match until {
            Some(key) => {
                values.insert(":until".to_owned(), AttributeValue::S(key.to_owned()));
                "#pk = :c AND #sk BETWEEN :since AND :until"
            }
            None => "#pk = :c AND #sk >= :since",
        };
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression(condition)
            .filter_expression("#ttl > :now AND #serial = :s")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .expression_attribute_names("#sk", SORT_KEY)
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_names("#serial", SERIAL_ATTRIBUTE)
            .set_expression_attribute_values(Some(values))
            .scan_index_forward(true)
            .consistent_read(true);
        Self::collect(query, MAX_MESSAGE_ENTRIES, |_| true).await
    }
}

/// Where a page of reports ended: the index partition (`{type}#{day}`) and the last
/// event's table keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportPosition {
    pub partition: String,
    pub conversation_id: String,
    pub event_key: String,
}

impl EventArchive {
    /// At most `limit` unexpired events of one report type from the `reports` index,
    /// `from` <= `occurred_at` < `to` (canonical ISO-8601 times), day partition after day
    /// partition, each in time order, after `after`; with the position to go on from, or
    /// `None` when the range holds no more.
    pub async fn reports(
        &self,
        report_type: &str,
        (from, to): (&str, &str),
        after: Option<&ReportPosition>,
        limit: usize,
        now_secs: i64,
    ) -> Result<(Vec<ChatEvent>, Option<ReportPosition>), ArchiveError> {
        let mut events = Vec::with_capacity(limit.min(1000));
        let mut last: Option<ReportPosition> = None;
        for day in days(from, to) {
            let partition = report_partition(report_type, &day);
            let mut start = match after {
                Some(after) if after.partition > partition => continue,
                Some(after) if after.partition == partition => Some(HashMap::from([
                    (
                        PARTITION_KEY.to_owned(),
                        AttributeValue::S(after.conversation_id.clone()),
                    ),
                    (
                        SORT_KEY.to_owned(),
                        AttributeValue::S(after.event_key.clone()),
                    ),
                    (REPORT_KEY.to_owned(), AttributeValue::S(partition.clone())),
                ])),
                _ => None,
            };
            loop {
                if events.len() == limit {
                    return Ok((events, last));
                }
                let page = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(REPORTS_INDEX)
                    .key_condition_expression("#rk = :rk AND #sk BETWEEN :from AND :to")
                    .filter_expression("#ttl > :now")
                    .expression_attribute_names("#rk", REPORT_KEY)
                    .expression_attribute_names("#sk", SORT_KEY)
                    .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                    .expression_attribute_values(":rk", AttributeValue::S(partition.clone()))
                    .expression_attribute_values(":from", AttributeValue::S(from.to_owned()))
                    .expression_attribute_values(":to", AttributeValue::S(to.to_owned()))
                    .expression_attribute_values(":now", AttributeValue::N(now_secs.to_string()))
                    .set_exclusive_start_key(start.take())
                    .limit((limit - events.len()).clamp(1, 1000) as i32)
                    .send()
                    .await
                    .map_err(|e| ArchiveError::Request(describe_sdk_error(&e)))?;
                for event in page.items().iter().filter_map(item_event) {
                    last = Some(ReportPosition {
                        partition: partition.clone(),
                        conversation_id: event.history_id.clone(),
                        event_key: event.event_key(),
                    });
                    events.push(event);
                    if events.len() == limit {
                        return Ok((events, last));
                    }
                }
                match page.last_evaluated_key {
                    Some(key) if !key.is_empty() => start = Some(key),
                    _ => break,
                }
            }
        }
        Ok((events, None))
    }
}

/// The days (`YYYY-MM-DD`, UTC) from `from`'s to `to`'s, both ISO-8601 times.
fn days(from: &str, to: &str) -> Vec<String> {
    let day = |t: &str| {
        chrono::NaiveDate::parse_from_str(t.get(..10).unwrap_or_default(), "%Y-%m-%d").ok()
    };
    let (Some(first), Some(last)) = (day(from), day(to)) else {
        return Vec::new();
    };
    first
        .iter_days()
        .take_while(|d| *d <= last)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .collect()
}

/// Entries of one message read at most (an answer streamed over a thousand deliveries).
const MAX_MESSAGE_ENTRIES: usize = 1000;
