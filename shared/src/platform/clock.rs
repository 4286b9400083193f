//! The one clock: wall time since the Unix epoch, as event times, token claims and the
//! Lambda deadline are written.

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Whole seconds since the Unix epoch (0 if the clock is before it), for token `iat`/`exp`.
pub fn unix_seconds() -> u64 {
    u64::try_from(now_ms().div_euclid(1000)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_and_seconds_tell_the_same_time() {
        let (ms, secs) = (now_ms(), unix_seconds());
        assert!(ms > 1_700_000_000_000, "{ms}");
        assert!(secs.abs_diff((ms / 1000) as u64) <= 1, "{secs} {ms}");
    }
}
