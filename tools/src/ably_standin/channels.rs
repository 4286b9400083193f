//! The stand-in's channels: what was published, with serials, and every change to it.
//!
//! Serials have Ably's shape (`01726232498871-001@e8FcVjXqBAmH3q:001`: milliseconds, a
//! counter within them, a stand-in id, the index in its publish) and grow strictly, so a
//! later version always has the greater `version.serial`, as on Ably. Messages on
//! `conversation:*` channels (mutable: the "Message annotations, updates, deletes, and
//! appends" rule) carry `action` 0 and a `version` from their creation on.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::AblyFailure;

/// The namespace whose channels are mutable, as the project's Ably app configures it.
const MUTABLE_PREFIX: &str = "conversation:";
/// Ably's `action` numbers of the changes `PATCH` accepts.
const UPDATE: u64 = 1;
const DELETE: u64 = 2;
const APPEND: u64 = 5;

/// A message (or a change) to hand to the integration rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivered {
    pub channel: String,
    pub message: Value,
}

#[derive(Default)]
struct Channel {
    /// The current state of each message, by serial.
    by_serial: HashMap<String, Value>,
    /// Ably de-duplicates a publish by message id: the serial each id got.
    serial_of_id: HashMap<String, String>,
}

/// Every channel, and the serial clock.
#[derive(Default)]
pub struct Channels {
    channels: HashMap<String, Channel>,
    last: (u64, u32),
    publishes: u64,
}

/// What a publish answered and what it delivers.
#[derive(Debug)]
pub struct Published {
    pub answer: Value,
    pub delivered: Vec<Delivered>,
}

impl Channels {
    /// A serial later than every one before it: `now` (or the last millisecond, if the
    /// clock went back) with a counter within the millisecond.
    fn next_serial(&mut self, now_ms: u64, index: usize) -> String {
        let (ms, counter) = if now_ms > self.last.0 {
            (now_ms, 0)
        } else {
            (self.last.0, self.last.1 + 1)
        };
        self.last = (ms, counter);
        format!("{ms:014}-{counter:03}@standin0local:{index:03}")
    }

    pub fn exists(&self, channel: &str) -> bool {
        self.channels.contains_key(channel)
    }

    /// `POST /channels/{channel}/messages` with one message object or an array of them.
    pub fn publish(
        &mut self,
        channel: &str,
        body: &Value,
        now_ms: u64,
    ) -> Result<Published, AblyFailure> {
        let messages: Vec<&Map<String, Value>> = match body {
            Value::Object(m) => vec![m],
            Value::Array(all) if !all.is_empty() => all
                .iter()
                .map(|m| m.as_object().ok_or_else(not_a_message))
                .collect::<Result<_, _>>()?,
            _ => return Err(not_a_message()),
        };
        self.publishes += 1;
        let fallback_base = format!("standin{}", self.publishes);
        let mutable = channel.starts_with(MUTABLE_PREFIX);
        let mut serials = Vec::with_capacity(messages.len());
        let mut delivered = Vec::new();
        let mut first_id = None;
        for (index, fields) in messages.into_iter().enumerate() {
            let id = match fields.get("id") {
                Some(Value::String(id)) => id.clone(),
                _ => format!("{fallback_base}:{index}"),
            };
            first_id.get_or_insert_with(|| id.clone());
            if let Some(serial) = self.channel(channel).serial_of_id.get(&id) {
                serials.push(Value::String(serial.clone()));
                continue; // a retried publish: Ably keeps the first and delivers nothing
            }
            let serial = self.next_serial(now_ms, index);
            let mut message = Map::new();
            message.insert("id".into(), json!(id));
            for field in ["clientId", "connectionId", "name", "extras"] {
                if let Some(value) = fields.get(field) {
                    message.insert(field.into(), value.clone());
                }
            }
            set_data(&mut message, fields);
            message.insert("timestamp".into(), json!(now_ms));
            message.insert("serial".into(), json!(serial));
            if mutable {
                message.insert("action".into(), json!(0));
                message.insert(
                    "version".into(),
                    json!({ "serial": serial, "timestamp": now_ms }),
                );
            }
            let message = Value::Object(message);
            let stored = self.channel(channel);
            stored.serial_of_id.insert(id, serial.clone());
            stored.by_serial.insert(serial.clone(), message.clone());
            serials.push(Value::String(serial));
            delivered.push(Delivered {
                channel: channel.to_owned(),
                message,
            });
        }
        let message_id = first_id
            .as_deref()
            .map(|id| id.rsplit_once(':').map_or(id, |(base, _)| base).to_owned());
        Ok(Published {
            answer: json!({ "channel": channel, "messageId": message_id, "serials": serials }),
            delivered,
        })
    }

    /// `GET /channels/{channel}/messages/{serial}`: the message as it now stands.
    pub fn get(&self, channel: &str, serial: &str) -> Option<&Value> {
        self.channels.get(channel)?.by_serial.get(serial)
    }

    /// `PATCH /channels/{channel}/messages/{serial}`: an update (1), delete (2) or append
    /// (5). Answers `{"versionSerial"}` and the change as the integration rule delivers it:
    /// an update or delete as the whole message, an append as its fragment alone.
    pub fn change(
        &mut self,
        channel: &str,
        serial: &str,
        body: &Value,
        now_ms: u64,
    ) -> Result<(Value, Delivered), AblyFailure> {
        let fields = body.as_object().ok_or_else(not_a_message)?;
        let action = fields.get("action").and_then(Value::as_u64);
        if !matches!(action, Some(UPDATE | DELETE | APPEND)) {
            return Err(AblyFailure::bad_request(
                "action must be 1 (update), 2 (delete) or 5 (append)",
            ));
        }
        if fields
            .get("serial")
            .is_some_and(|s| s.as_str() != Some(serial))
        {
            return Err(AblyFailure::bad_request(
                "the body's serial is not the path's",
            ));
        }
        if !channel.starts_with(MUTABLE_PREFIX) {
            return Err(AblyFailure::new(
                400,
                40024,
                "message updates and deletes are not enabled on this channel",
            ));
        }
        if self.get(channel, serial).is_none() {
            return Err(AblyFailure::not_found("message not found"));
        }
        let version_serial = self.next_serial(now_ms, 0);
        let mut version = Map::new();
        version.insert("serial".into(), json!(version_serial));
        version.insert("timestamp".into(), json!(now_ms));
        if let Some(Value::Object(operation)) = fields.get("version") {
            for field in ["clientId", "description", "metadata"] {
                if let Some(value) = operation.get(field) {
                    version.insert(field.into(), value.clone());
                }
            }
        }
        let action = action.unwrap_or(UPDATE);
        let Some(Value::Object(current)) = self
            .channels
            .get_mut(channel)
            .and_then(|c| c.by_serial.get_mut(serial))
        else {
            return Err(AblyFailure::not_found("message not found"));
        };
        current.insert("action".into(), json!(action));
        current.insert("version".into(), Value::Object(version));
        let delivered = if action == APPEND {
            let fragment = fields.get("data").cloned().unwrap_or(json!(""));
            let grown = match (current.get("data"), &fragment) {
                (Some(Value::String(text)), Value::String(more)) => json!(format!("{text}{more}")),
                _ => fragment.clone(),
            };
            let mut change = current.clone();
            change.insert("data".into(), fragment);
            current.insert("data".into(), grown);
            change
        } else {
            if let Some(name) = fields.get("name") {
                current.insert("name".into(), name.clone());
            }
            if fields.contains_key("data") {
                current.remove("encoding");
                set_data(current, fields);
            }
            current.clone()
        };
        Ok((
            json!({ "versionSerial": version_serial }),
            Delivered {
                channel: channel.to_owned(),
                message: Value::Object(delivered),
            },
        ))
    }

    fn channel(&mut self, name: &str) -> &mut Channel {
        self.channels.entry(name.to_owned()).or_default()
    }
}

/// `data` as Ably keeps it: a string as it is (with the publisher's `encoding`), anything
/// else as JSON text with `encoding: "json"`.
fn set_data(message: &mut Map<String, Value>, fields: &Map<String, Value>) {
    match fields.get("data") {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) => {
            message.insert("data".into(), json!(text));
            if let Some(encoding) = fields.get("encoding") {
                message.insert("encoding".into(), encoding.clone());
            }
        }
        Some(other) => {
            message.insert("data".into(), json!(other.to_string()));
            message.insert("encoding".into(), json!("json"));
        }
    }
}

fn not_a_message() -> AblyFailure {
    AblyFailure::bad_request("the body must be a message object or a non-empty array of them")
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHANNEL: &str = "conversation:conv-1";

    fn publish_one(channels: &mut Channels, body: Value, now: u64) -> (String, Delivered) {
        let published = channels.publish(CHANNEL, &body, now).unwrap();
        let serial = published.answer["serials"][0].as_str().unwrap().to_owned();
        (serial, published.delivered.into_iter().next().unwrap())
    }

    #[test]
    fn a_publish_answers_as_ably_and_delivers_a_create_with_its_serial() {
        let mut channels = Channels::default();
        let body = json!([
            {"id": "abc:0", "name": "message:user", "data": {"text": "hi"}, "clientId": "customer:u-1"},
            {"id": "abc:1", "name": "message:user", "data": "plain"}
        ]);
        let published = channels.publish(CHANNEL, &body, 1_700_000_000_000).unwrap();
        assert_eq!(published.answer["channel"], CHANNEL);
        assert_eq!(published.answer["messageId"], "abc");
        let serials = published.answer["serials"].as_array().unwrap();
        assert_eq!(serials[0], "01700000000000-000@standin0local:000");
        assert!(serials[1].as_str().unwrap() > serials[0].as_str().unwrap());
        let create = &published.delivered[0].message;
        assert_eq!(create["data"], r#"{"text":"hi"}"#);
        assert_eq!(create["encoding"], "json");
        assert_eq!(create["action"], 0);
        assert_eq!(create["version"]["serial"], create["serial"]);
        assert_eq!(create["clientId"], "customer:u-1");
        assert_eq!(published.delivered[1].message["data"], "plain");
        assert!(published.delivered[1].message.get("encoding").is_none());
    }

    #[test]
    fn a_retried_publish_keeps_its_serial_and_delivers_nothing() {
        let mut channels = Channels::default();
        let body = json!({"id": "same:0", "name": "n", "data": "d"});
        let first = channels.publish(CHANNEL, &body, 10).unwrap();
        let again = channels.publish(CHANNEL, &body, 20).unwrap();
        assert_eq!(first.answer["serials"], again.answer["serials"]);
        assert!(again.delivered.is_empty());
    }

    #[test]
    fn serials_grow_even_when_the_clock_does_not() {
        let mut channels = Channels::default();
        let a = channels.next_serial(5_000, 0);
        let b = channels.next_serial(4_000, 0);
        let c = channels.next_serial(5_000, 0);
        assert!(a < b && b < c, "{a} {b} {c}");
    }

    #[test]
    fn non_mutable_channels_have_no_action_nor_version() {
        let mut channels = Channels::default();
        let published = channels
            .publish("sms:u-1:x", &json!({"name": "n", "data": "d"}), 1)
            .unwrap();
        assert!(published.delivered[0].message.get("action").is_none());
        assert!(published.answer["messageId"].is_string());
    }

    #[test]
    fn changes_get_later_version_serials_and_the_editor_as_client_id() {
        let mut channels = Channels::default();
        let (serial, _) = publish_one(
            &mut channels,
            json!({"id": "m:0", "name": "message:ai", "data": "Hello", "clientId": "broker:b-1"}),
            1_000,
        );
        let append = json!({"serial": serial, "data": " world", "action": 5,
                            "version": {"clientId": "broker:b-1"}});
        let (answer, delivered) = channels.change(CHANNEL, &serial, &append, 2_000).unwrap();
        let first_version = answer["versionSerial"].as_str().unwrap().to_owned();
        assert!(first_version > serial);
        assert_eq!(delivered.message["data"], " world");
        assert_eq!(delivered.message["action"], 5);
        assert_eq!(delivered.message["timestamp"], 1_000);
        assert_eq!(delivered.message["version"]["clientId"], "broker:b-1");
        assert_eq!(
            channels.get(CHANNEL, &serial).unwrap()["data"],
            "Hello world"
        );

        let delete = json!({"serial": serial, "action": 2,
                            "version": {"clientId": "admin:a-1", "description": "moderated"}});
        let (answer, delivered) = channels.change(CHANNEL, &serial, &delete, 3_000).unwrap();
        assert!(answer["versionSerial"].as_str().unwrap() > first_version.as_str());
        assert_eq!(delivered.message["action"], 2);
        assert_eq!(delivered.message["clientId"], "broker:b-1");
        assert_eq!(delivered.message["version"]["clientId"], "admin:a-1");
        assert_eq!(delivered.message["version"]["description"], "moderated");
    }

    #[test]
    fn an_update_carries_the_whole_message_as_it_now_stands() {
        let mut channels = Channels::default();
        let (serial, _) = publish_one(
            &mut channels,
            json!({"name": "message:user", "data": {"text": "helo"}, "clientId": "customer:u-1"}),
            1_000,
        );
        let update = json!({"serial": serial, "name": "message:user",
                            "data": "{\"text\":\"hello\"}", "encoding": "json", "action": 1,
                            "version": {"clientId": "customer:u-1", "description": "typo"}});
        let (_, delivered) = channels.change(CHANNEL, &serial, &update, 2_000).unwrap();
        assert_eq!(delivered.message["data"], "{\"text\":\"hello\"}");
        assert_eq!(delivered.message["encoding"], "json");
        assert_eq!(delivered.message["action"], 1);
        assert_eq!(delivered.message["serial"], serial);
    }

    #[test]
    fn a_change_is_refused_when_unknown_or_malformed() {
        let mut channels = Channels::default();
        let unknown = channels.change(CHANNEL, "nope", &json!({"action": 1}), 1);
        assert_eq!(unknown.unwrap_err().status, 404);
        let (serial, _) = publish_one(&mut channels, json!({"name": "n", "data": "d"}), 1);
        let bad = channels.change(CHANNEL, &serial, &json!({"action": 0}), 2);
        assert_eq!(bad.unwrap_err().status, 400);
        let other = channels.change(CHANNEL, &serial, &json!({"action": 1, "serial": "x"}), 2);
        assert_eq!(other.unwrap_err().status, 400);
    }
}
