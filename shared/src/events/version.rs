//! The vocabulary of messages that change (see [`crate::events::change`]): Ably's message
//! actions, who made a version and when, and the appends an entry holds.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a message entry does to its message, by Ably's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Action {
    #[serde(rename = "message.create")]
    Create,
    #[serde(rename = "message.update")]
    Update,
    #[serde(rename = "message.delete")]
    Delete,
    #[serde(rename = "meta")]
    Meta,
    #[serde(rename = "message.summary")]
    Summary,
    #[serde(rename = "message.append")]
    Append,
}

impl Action {
    /// The action of a wire value: Ably's number, or its name (ably-js). `None` for
    /// anything else.
    pub fn of_wire(value: &Value) -> Option<Action> {
        match value {
            Value::Number(n) => match n.as_u64()? {
                0 => Some(Action::Create),
                1 => Some(Action::Update),
                2 => Some(Action::Delete),
                3 => Some(Action::Meta),
                4 => Some(Action::Summary),
                5 => Some(Action::Append),
                _ => None,
            },
            Value::String(name) => Action::of_name(name),
            _ => None,
        }
    }

    /// The action Ably names `name` (`message.update`, ...).
    pub fn of_name(name: &str) -> Option<Action> {
        serde_json::from_value(Value::String(name.to_owned())).ok()
    }

    /// Ably's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "message.create",
            Action::Update => "message.update",
            Action::Delete => "message.delete",
            Action::Meta => "meta",
            Action::Summary => "message.summary",
            Action::Append => "message.append",
        }
    }

    /// Ably's number for it, as ably-js sends it.
    pub fn wire_number(self) -> u8 {
        match self {
            Action::Create => 0,
            Action::Update => 1,
            Action::Delete => 2,
            Action::Meta => 3,
            Action::Summary => 4,
            Action::Append => 5,
        }
    }

    /// Whether it carries the whole message (create, update, delete).
    pub fn is_whole(self) -> bool {
        matches!(self, Action::Create | Action::Update | Action::Delete)
    }
}

/// Who made a version of a message, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// Ably's `version.serial`: the newest version has the greatest.
    pub serial: String,
    /// The editor's clientId as Ably verified it; `None`: the API key.
    #[serde(default)]
    pub client_id: Option<String>,
    /// When the version was made (ISO-8601 UTC with milliseconds).
    pub updated_at: String,
}

/// One append an entry holds: its version serial and the number of characters it added
/// at the end of the entry's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    pub serial: String,
    pub chars: usize,
}

/// The appends an entry holds, oldest first. Written compactly, since an answer's
/// deliveries hold dozens of them: the version serials' common prefix once, then each
/// serial's rest and each length, `{"prefix": "…", "serials": […], "chars": […]}`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fragments(Vec<Fragment>);

impl Fragments {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::ops::Deref for Fragments {
    type Target = Vec<Fragment>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Fragments {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

#[derive(Serialize, Deserialize)]
struct WireFragments<'a> {
    #[serde(borrow)]
    prefix: std::borrow::Cow<'a, str>,
    serials: Vec<String>,
    chars: Vec<usize>,
}

impl Serialize for Fragments {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let first = self.0.first().map_or("", |f| f.serial.as_str());
        let mut prefix = first.len();
        for fragment in &self.0[1.min(self.0.len())..] {
            prefix = first
                .bytes()
                .zip(fragment.serial.bytes())
                .take(prefix)
                .take_while(|(a, b)| a == b)
                .count();
        }
        while !first.is_char_boundary(prefix) {
            prefix -= 1;
        }
        WireFragments {
            prefix: std::borrow::Cow::Borrowed(&first[..prefix]),
            serials: self
                .0
                .iter()
                .map(|f| f.serial[prefix..].to_owned())
                .collect(),
            chars: self.0.iter().map(|f| f.chars).collect(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Fragments {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = WireFragments::deserialize(deserializer)?;
        if wire.serials.len() != wire.chars.len() {
            return Err(serde::de::Error::custom(
                "fragments: serials and chars differ",
            ));
        }
        Ok(Fragments(
            wire.serials
                .into_iter()
                .zip(wire.chars)
                .map(|(rest, chars)| Fragment {
                    serial: format!("{}{rest}", wire.prefix),
                    chars,
                })
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_are_written_with_their_common_prefix_once_and_read_back() {
        let fragments = Fragments(vec![
            Fragment {
                serial: "01726@e1:00001".into(),
                chars: 4,
            },
            Fragment {
                serial: "01726@e1:00002".into(),
                chars: 1,
            },
            Fragment {
                serial: "01726@e1:00310".into(),
                chars: 12,
            },
        ]);
        let text = serde_json::to_string(&fragments).unwrap();
        assert_eq!(
            text,
            r#"{"prefix":"01726@e1:00","serials":["001","002","310"],"chars":[4,1,12]}"#
        );
        assert_eq!(serde_json::from_str::<Fragments>(&text).unwrap(), fragments);
        let one = Fragments(vec![Fragment {
            serial: "é".into(),
            chars: 1,
        }]);
        assert_eq!(
            serde_json::from_str::<Fragments>(&serde_json::to_string(&one).unwrap()).unwrap(),
            one
        );
        assert!(
            serde_json::from_str::<Fragments>(r#"{"prefix":"","serials":["a"],"chars":[]}"#)
                .is_err()
        );
    }
}
