//! ISO-8601 UTC times, as events, answers and archive items carry them.

use std::fmt::Write as _;

/// ISO-8601 UTC with milliseconds (`2026-11-22T03:04:05.678Z`), for years 0 to 9999.
/// Written by hand: it runs for every event and chrono's formatter is several times slower.
pub fn iso_millis(ms: i64) -> Option<String> {
    iso(ms, true)
}

/// Unix seconds as ISO-8601 UTC without fractions (`2026-11-22T03:04:05Z`).
pub fn iso_seconds(secs: u64) -> Option<String> {
    iso(i64::try_from(secs).ok()?.checked_mul(1000)?, false)
}

fn iso(ms: i64, with_millis: bool) -> Option<String> {
    // 0000-01-01T00:00:00.000Z ..= 9999-12-31T23:59:59.999Z
    if !(-62_167_219_200_000..=253_402_300_799_999).contains(&ms) {
        return None;
    }
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let mut out = String::with_capacity(24);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
    );
    if with_millis {
        let _ = write!(out, ".{:03}", rem % 1000);
    }
    out.push('Z');
    Some(out)
}

/// The instant of an [`iso_millis`] time, in ms since the epoch; `None` for any other
/// text (this reads back what this module writes, nothing else).
pub fn millis_of(iso: &str) -> Option<i64> {
    let b = iso.as_bytes();
    if b.len() != 24 || [4, 7, 10, 13, 16, 19, 23].map(|i| b[i]) != *b"--T::.Z" {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> {
        b[from..to].iter().try_fold(0i64, |n, d| {
            d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0'))
        })
    };
    let (y, m, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (h, min, sec, ms) = (num(11, 13)?, num(14, 16)?, num(17, 19)?, num(20, 23)?);
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        1..=12 => 31,
        _ => return None,
    };
    // Checked, not formatted again: this runs for every archived event.
    if !(1..=month_days).contains(&d) || h > 23 || min > 59 || sec > 59 {
        return None;
    }
    Some(days_from_civil(y, m, d) * 86_400_000 + h * 3_600_000 + min * 60_000 + sec * 1000 + ms)
}

/// (year, month, day) in the proleptic Gregorian calendar -> days since 1970-01-01.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 -> (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_timestamps_match_chrono_across_the_range() {
        for ms in [
            0i64,
            1,
            -1,
            951_782_400_000,
            1_123_145_678_900,
            4_102_444_800_000,
            -62_167_219_200_000,
            253_402_300_799_999,
            1_700_000_000_123,
        ] {
            let expected = chrono::DateTime::from_timestamp_millis(ms)
                .unwrap()
                .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                .to_string();
            assert_eq!(iso_millis(ms).unwrap(), expected, "{ms}");
        }
        assert_eq!(iso_millis(253_402_300_800_000), None);
        assert_eq!(iso_millis(-62_167_219_200_001), None);
    }

    #[test]
    fn times_read_back_to_the_instant_they_were_written_from() {
        for ms in [
            0i64,
            1,
            -1,
            951_782_400_000,
            1_700_000_000_123,
            4_102_444_800_000,
            -62_167_219_200_000,
            253_402_300_799_999,
        ] {
            assert_eq!(millis_of(&iso_millis(ms).unwrap()), Some(ms), "{ms}");
        }
        assert!(millis_of("2024-02-29T00:00:00.000Z").is_some());
        assert!(millis_of("2000-02-29T00:00:00.000Z").is_some());
        for bad in [
            "",
            "2026-02-30T00:00:00.000Z",
            "2026-02-29T00:00:00.000Z",
            "1900-02-29T00:00:00.000Z",
            "2026-13-01T00:00:00.000Z",
            "2026-01-01T24:00:00.000Z",
            "2026-01-01T00:00:00.000+",
            "2026-01-01 00:00:00.000Z",
            "2026-01-01T00:00:00Z",
            "+026-01-01T00:00:00.000Z",
        ] {
            assert_eq!(millis_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn seconds_are_written_without_a_fraction() {
        assert_eq!(
            iso_seconds(1_700_000_000).as_deref(),
            Some("2023-11-14T22:13:20Z")
        );
        assert_eq!(iso_seconds(253_402_300_800), None);
        assert_eq!(iso_seconds(u64::MAX), None);
    }
}
