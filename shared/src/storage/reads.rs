//! The archive's reads: a conversation's newest entries, the entries after a polling
//! cursor, and the entries of one message.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::events::ChatEvent;
use crate::storage::archive::{describe_sdk_error, ArchiveError, EventArchive};
use crate::storage::dynamo::{PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE};
use crate::storage::item::item_event;

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

/// Entries of one message read at most (an answer streamed over a thousand deliveries).
const MAX_MESSAGE_ENTRIES: usize = 1000;
