//! The zip that shared-credential provisioning puts at
//! `/var/sota/sota_provisioning_credentials.zip` (domain.md section 4), and
//! the host-only archive for garage-push and garage-sign. Built in memory,
//! byte for byte the same on every machine: entries sorted by name, stored
//! (no compression, so no dependence on a deflate implementation; the p12
//! inside is encrypted and would not shrink), every entry time the same,
//! fixed Unix attributes, no extra fields, no comment.

use std::io::{Cursor, Write};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use crate::error::{Error, Result};
use crate::time::civil_from_unix;

/// Mode recorded for every entry.
const ENTRY_MODE: u32 = 0o600;

/// The zip DOS time for `epoch`, as UTC. DOS times start in 1980 and count
/// seconds in twos: earlier times are clamped to 1980-01-01, odd seconds
/// round down.
pub fn dos_time(epoch: i64) -> DateTime {
    let c = civil_from_unix(epoch.max(315_532_800));
    let year = u16::try_from(c.year.min(2107)).unwrap_or(2107);
    DateTime::from_date_and_time(
        year,
        c.month as u8,
        c.day as u8,
        c.hour as u8,
        c.minute as u8,
        c.second as u8 & !1,
    )
    .unwrap_or_default()
}

/// Builds a zip of `entries` (name, bytes). Names must be unique.
pub fn build(entries: &[(&str, &[u8])], epoch: i64) -> Result<Vec<u8>> {
    let mut sorted: Vec<&(&str, &[u8])> = entries.iter().collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .last_modified_time(dos_time(epoch))
        .unix_permissions(ENTRY_MODE)
        .large_file(false);
    let fail =
        |e: zip::result::ZipError| Error::Invalid(format!("cannot build a zip in memory: {e}"));
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data) in sorted {
        zip.start_file(*name, options).map_err(fail)?;
        zip.write_all(data)
            .map_err(|e| Error::Invalid(format!("cannot build a zip in memory: {e}")))?;
    }
    Ok(zip.finish().map_err(fail)?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intake::archive::{parse, Limits};

    #[test]
    fn same_input_same_bytes_sorted_entries() {
        let a = build(&[("b", b"2"), ("a", b"1")], 1_700_000_000).expect("zip");
        let b = build(&[("a", b"1"), ("b", b"2")], 1_700_000_000).expect("zip");
        assert_eq!(a, b);
        let back = parse(&a, &Limits::default()).expect("readable");
        let names: Vec<_> = back.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(back.entries[0].data, b"1");
        let c = build(&[("a", b"1"), ("b", b"2")], 1_700_000_002).expect("zip");
        assert_ne!(a, c, "the time is in the bytes");
    }

    #[test]
    fn no_extra_fields() {
        let bytes = build(&[("autoprov.url", b"https://x.example.test")], 0).expect("zip");
        // Local header: extra field length at offset 28.
        assert_eq!(&bytes[..4], b"PK\x03\x04");
        assert_eq!(u16::from_le_bytes([bytes[28], bytes[29]]), 0);
        let mut z = zip::ZipArchive::new(Cursor::new(&bytes)).expect("zip");
        let f = z.by_index(0).expect("entry");
        assert_eq!(f.extra_data().map_or(0, <[u8]>::len), 0);
        assert_eq!(f.unix_mode().map(|m| m & 0o777), Some(0o600));
        assert_eq!(f.compression(), CompressionMethod::Stored);
    }

    #[test]
    fn dos_time_clamps_and_rounds() {
        let t = dos_time(0);
        assert_eq!((t.year(), t.month(), t.day()), (1980, 1, 1));
        let t = dos_time(1_302_044_401);
        assert_eq!((t.hour(), t.minute(), t.second()), (23, 0, 0));
    }
}
