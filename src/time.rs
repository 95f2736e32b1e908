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

/// `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339, UTC).
pub fn format_date_time(t: i64) -> String {
    let c = civil_from_unix(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
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

/// Parses an RFC 3339 date-time (section 5.6: `2030-01-01T00:00:00Z`,
/// `2030-01-01t00:00:00.5+02:00`) into unix seconds, fractions dropped.
/// The error says what is wrong, without quoting the text.
pub fn parse_rfc3339(text: &str) -> Result<i64, String> {
    let b = text.as_bytes();
    let digits = |from: usize, len: usize| -> Result<i64, String> {
        let part = b.get(from..from + len).ok_or("it is too short")?;
        if !part.iter().all(u8::is_ascii_digit) {
            return Err(format!("expected {len} digits at character {}", from + 1));
        }
        Ok(part.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let sep = |at: usize, allowed: &[u8]| -> Result<(), String> {
        match b.get(at) {
            Some(c) if allowed.contains(c) => Ok(()),
            _ => Err(format!(
                "expected `{}` at character {}",
                allowed[0] as char,
                at + 1
            )),
        }
    };
    let year = digits(0, 4)?;
    sep(4, b"-")?;
    let month = digits(5, 2)?;
    sep(7, b"-")?;
    let day = digits(8, 2)?;
    sep(10, b"Tt")?;
    let hour = digits(11, 2)?;
    sep(13, b":")?;
    let minute = digits(14, 2)?;
    sep(16, b":")?;
    let second = digits(17, 2)?;
    let mut at = 19;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        if at == start {
            return Err("a `.` must be followed by digits".into());
        }
    }
    let offset = match b.get(at) {
        Some(b'Z' | b'z') => {
            at += 1;
            0
        }
        Some(sign @ (b'+' | b'-')) => {
            let hours = digits(at + 1, 2)?;
            sep(at + 3, b":")?;
            let minutes = digits(at + 4, 2)?;
            if hours > 23 || minutes > 59 {
                return Err("its offset is out of range".into());
            }
            at += 6;
            let offset = hours * 3600 + minutes * 60;
            if *sign == b'+' {
                offset
            } else {
                -offset
            }
        }
        _ => return Err("it has no time zone (`Z` or an offset such as `+02:00`)".into()),
    };
    if at != b.len() {
        return Err("something follows the time zone".into());
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err("its month is out of range".into()),
    };
    if day < 1 || day > days_in_month {
        return Err("its day is out of range".into());
    }
    // 60: a leap second (RFC 3339 section 5.7).
    if hour > 23 || minute > 59 || second > 60 {
        return Err("its time of day is out of range".into());
    }
    Ok(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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
    fn rfc3339_times() {
        let cases = [
            ("1970-01-01T00:00:00Z", 0),
            ("2030-01-01T00:00:00Z", 1_893_456_000),
            ("2018-07-18T00:18:02Z", 1_531_873_082),
            ("2000-02-29t00:00:00.123z", 951_782_400),
            ("2000-02-29T02:00:00+02:00", 951_782_400),
            ("1999-12-31T23:30:00-00:30", 946_684_800),
            ("2016-12-31T23:59:60Z", 1_483_228_800),
        ];
        for (text, unix) in cases {
            assert_eq!(parse_rfc3339(text), Ok(unix), "{text}");
        }
        for bad in [
            "never",
            "",
            "2030-01-01",
            "2030-01-01T00:00:00",
            "2030-01-01 00:00:00Z",
            "2030-13-01T00:00:00Z",
            "2030-02-29T00:00:00Z",
            "2030-01-01T24:00:00Z",
            "2030-01-01T00:00:00Z ",
            "2030-01-01T00:00:00.Z",
            "2030-01-01T00:00:00+2:00",
            "+2030-01-01T00:00:00Z",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn source_date_epoch() {
        assert_eq!(parse_source_date_epoch("1700000000\n"), Ok(1_700_000_000));
        for bad in ["", "-1", "1e9", "abc", "99999999999999999999"] {
            assert!(parse_source_date_epoch(bad).is_err(), "{bad}");
        }
    }
}
