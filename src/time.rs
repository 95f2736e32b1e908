//! Time without a time crate: `SOURCE_DATE_EPOCH`, and unix seconds as
//! civil UTC dates (by `der`'s `DateTime`, which the certificate parser
//! already brings).

use std::time::Duration;

use der::DateTime;

/// The time written into staged files when `SOURCE_DATE_EPOCH` is unset:
/// OE-core's `SOURCE_DATE_EPOCH_FALLBACK` (2011-04-05T23:00:00Z), so a run
/// outside bitbake gives the same bytes as one inside a build that has no
/// better date.
pub const DEFAULT_SOURCE_DATE_EPOCH: i64 = 1_302_044_400;

/// A UTC calendar time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

/// Seconds in 400 Gregorian years (146,097 days), after which the
/// calendar repeats, leap days included.
const GREGORIAN_CYCLE: i64 = 146_097 * 86_400;

/// Unix seconds to a UTC calendar time, for any `i64`.
pub fn civil_from_unix(t: i64) -> Civil {
    // `DateTime` covers 1970 to 9999 only. A time is read as the same
    // moment of the 400-year cycle that starts in 1970 and the cycles are
    // added back to the year, so that a clock set before 1970 and
    // `SOURCE_DATE_EPOCH` far in the future still give a date.
    let cycles = t.div_euclid(GREGORIAN_CYCLE);
    let in_cycle = Duration::from_secs(t.rem_euclid(GREGORIAN_CYCLE).unsigned_abs());
    // Cannot fail: `in_cycle` is before 2370, inside `DateTime`'s range.
    let date = DateTime::from_unix_duration(in_cycle).unwrap_or(DateTime::INFINITY);
    Civil {
        year: i64::from(date.year()) + 400 * cycles,
        month: u32::from(date.month()),
        day: u32::from(date.day()),
        hour: u32::from(date.hour()),
        minute: u32::from(date.minutes()),
        second: u32::from(date.seconds()),
    }
}

/// `YYYY-MM-DD` in UTC.
pub fn format_date(t: i64) -> String {
    let c = civil_from_unix(t);
    format!("{:04}-{:02}-{:02}", c.year, c.month, c.day)
}

/// Parses `SOURCE_DATE_EPOCH` (decimal unix seconds, as
/// reproducible-builds.org defines it).
pub fn parse_source_date_epoch(text: &str) -> Result<i64, String> {
    let t = text.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "`SOURCE_DATE_EPOCH` must be a non-negative number of seconds, not `{t}`"
        ));
    }
    t.parse::<i64>()
        .map_err(|_| format!("`SOURCE_DATE_EPOCH` `{t}` is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(format_date(0), "1970-01-01");
        assert_eq!(format_date(DEFAULT_SOURCE_DATE_EPOCH), "2011-04-05");
        assert_eq!(format_date(951_782_400), "2000-02-29");
        assert_eq!(format_date(1_531_873_082), "2018-07-18");
        assert_eq!(format_date(-86_400), "1969-12-31");
        // Outside `DateTime`'s 1970 to 9999, by whole 400-year cycles.
        assert_eq!(format_date(-12_622_780_800), "1570-01-01");
        assert_eq!(format_date(-12_622_780_801), "1569-12-31");
        assert_eq!(format_date(253_402_300_800), "10000-01-01");
        let c = civil_from_unix(1_764_115_199);
        assert_eq!(
            (c.year, c.month, c.day, c.hour, c.minute, c.second),
            (2025, 11, 25, 23, 59, 59)
        );
    }

    #[test]
    fn source_date_epoch() {
        assert_eq!(parse_source_date_epoch("1700000000\n"), Ok(1_700_000_000));
        for bad in ["", "-1", "1e9", "abc", "99999999999999999999"] {
            assert!(parse_source_date_epoch(bad).is_err(), "{bad}");
        }
    }
}
