//! Configuration from the environment, read and validated once at cold start.
//!
//! A missing or invalid variable fails the cold start with a message naming every
//! offending variable; secret values are wrapped in [`Secret`] and never printed. Each
//! concept parses its own settings from an [`Env`] (`RedisConfig`, `JwtConfig`, ...).

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

/// A secret value. `Debug` and `Display` never show it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(Box<str>);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into().into_boxed_str())
    }
    /// The secret itself, for signing or authenticating; never log the result.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Why the configuration could not be loaded; names the variables, never their values.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid configuration: {}", .problems.join("; "))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

/// Reads variables from a snapshot of the environment and collects every problem, so a
/// misconfigured deployment learns all missing variables from one failed cold start.
pub struct Env {
    vars: HashMap<String, String>,
    problems: Vec<String>,
}

impl Env {
    pub fn from_process() -> Self {
        Self::from_pairs(std::env::vars())
    }

    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Env {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            problems: Vec::new(),
        }
    }

    /// A set, non-blank variable, trimmed.
    pub fn optional(&self, name: &str) -> Option<String> {
        self.vars
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }

    /// A required variable; records a problem (and returns an empty string) when missing.
    pub fn required(&mut self, name: &str) -> String {
        match self.optional(name) {
            Some(v) => v,
            None => {
                self.problems
                    .push(format!("missing required environment variable {name}"));
                String::new()
            }
        }
    }

    /// A required `http(s)://` URL, without a trailing slash.
    pub fn required_url(&mut self, name: &str) -> String {
        let url = self.required(name);
        self.check_url(name, &url);
        url.trim_end_matches('/').to_owned()
    }

    /// An optional `http(s)://` URL, or `default` when unset; without a trailing slash.
    pub fn url_or(&mut self, name: &str, default: &str) -> String {
        let url = self.optional(name).unwrap_or_else(|| default.to_owned());
        self.check_url(name, &url);
        url.trim_end_matches('/').to_owned()
    }

    /// Records a problem unless `url` is empty or an `http(s)://` URL.
    fn check_url(&mut self, name: &str, url: &str) {
        if !(url.is_empty() || url.starts_with("https://") || url.starts_with("http://")) {
            self.problems.push(format!("{name} must be an http(s) URL"));
        }
    }

    /// A required secret of at least `min_len` bytes.
    pub fn secret(&mut self, name: &str, min_len: usize) -> Secret {
        let value = self.required(name);
        if !value.is_empty() && value.len() < min_len {
            self.problems
                .push(format!("{name} must be at least {min_len} bytes long"));
        }
        Secret::new(value)
    }

    /// A required value parsed with `FromStr`; the error names the variable, not its value.
    pub fn required_parsed<T>(&mut self, name: &str) -> T
    where
        T: FromStr + Default,
        T::Err: fmt::Display,
    {
        let raw = self.required(name);
        if raw.is_empty() {
            return T::default();
        }
        self.parse_value(name, &raw).unwrap_or_default()
    }

    /// An optional value parsed with `FromStr`, or `default` when unset.
    pub fn parsed_or<T>(&mut self, name: &str, default: T) -> T
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match self.optional(name) {
            None => default,
            Some(raw) => self.parse_value(name, &raw).unwrap_or(default),
        }
    }

    /// An optional boolean, `true` or `false` (in any ASCII case), or `default` when unset.
    /// Anything else (`1`, `yes`, a typo) fails the cold start rather than guess what a
    /// switch that changes behaviour was meant to be.
    pub fn flag(&mut self, name: &str, default: bool) -> bool {
        match self.optional(name) {
            None => default,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(_) => {
                self.problems.push(format!("{name} must be true or false"));
                default
            }
        }
    }

    /// Records a problem found while validating a value (never include the value of a secret).
    pub fn problem(&mut self, message: impl Into<String>) {
        self.problems.push(message.into());
    }

    fn parse_value<T>(&mut self, name: &str, raw: &str) -> Option<T>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match raw.parse::<T>() {
            Ok(v) => Some(v),
            Err(e) => {
                self.problems.push(format!("{name} is invalid: {e}"));
                None
            }
        }
    }

    /// Ends loading: an error listing every problem, or `Ok` when there were none.
    pub fn finish(self) -> Result<(), ConfigError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError {
                problems: self.problems,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_variables_are_all_named_and_secrets_never_shown() {
        let mut env = Env::from_pairs([("JWT_SECRET", "short-secret-value")]);
        let jwt = env.secret("JWT_SECRET", 32);
        env.required_url("UPSTASH_REDIS_REST_URL");
        env.secret("UPSTASH_REDIS_REST_TOKEN", 1);
        let err = env.finish().unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("JWT_SECRET must be at least 32 bytes"),
            "{text}"
        );
        assert!(text.contains("missing required environment variable UPSTASH_REDIS_REST_URL"));
        assert!(text.contains("missing required environment variable UPSTASH_REDIS_REST_TOKEN"));
        assert!(!text.contains("short-secret-value"));
        assert!(!format!("{jwt:?}").contains("short-secret-value"));
    }

    #[test]
    fn bad_numbers_name_the_variable() {
        let mut env = Env::from_pairs([("REDIS_EVENT_MAX", "many")]);
        assert_eq!(env.parsed_or("REDIS_EVENT_MAX", 100u32), 100);
        let text = env.finish().unwrap_err().to_string();
        assert!(text.contains("REDIS_EVENT_MAX is invalid"));
    }

    #[test]
    fn flags_are_true_or_false_and_anything_else_names_the_variable() {
        let mut env = Env::from_pairs([
            ("A", "true"),
            ("B", " FALSE "),
            ("C", "True"),
            ("D", "1"),
            ("E", "yes"),
            ("F", "tru"),
        ]);
        assert!(env.flag("A", false));
        assert!(!env.flag("B", true));
        assert!(env.flag("C", false));
        assert!(env.flag("UNSET", true));
        assert!(!env.flag("UNSET", false));
        for name in ["D", "E", "F"] {
            env.flag(name, false);
        }
        assert_eq!(
            env.finish().unwrap_err().problems,
            [
                "D must be true or false",
                "E must be true or false",
                "F must be true or false"
            ]
        );
    }
}
