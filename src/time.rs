//! Time without a time crate: `SOURCE_DATE_EPOCH`, and unix seconds as
//! civil UTC dates (Howard Hinnant's `civil_from_days`).

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

/// Unix seconds to a UTC calendar time.
pub fn civil_from_unix(t: i64) -> Civil {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil {
        year,
        month,
        day,
        hour: (secs / 3600) as u32,
        minute: (secs % 3600 / 60) as u32,
        second: (secs % 60) as u32,
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
