//! Archive intake: the only module that reads a credentials archive.
//!
//! Only a regular zip is accepted (design.md section 3). Every entry is
//! checked before its bytes are trusted: its name, its type, whether it is
//! encrypted, and its size, counted while inflating (the sizes in the
//! headers can lie). Each entry is read once, into memory, under the limits
//! of [`Limits`]. What comes out is an [`Archive`]: names and bytes, nothing
//! judged yet beyond safety; the content checks live in [`crate::checks`].

use std::collections::HashSet;
use std::io::{Cursor, Read};
use std::path::Path;

use zip::result::ZipError;
use zip::ZipArchive;

use crate::digest::sha256_hex;
use crate::error::{ArchiveError, Error, Result};
use crate::escape;
use crate::files;
use crate::intake::catalogue;
use crate::report::counted;

/// Bounds on what an archive may hold. The defaults are far above any real
/// credentials archive (a dozen entries of a few KiB) and far below what
/// would hurt a build host. They are documented in docs/archive-intake.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most entries, directories included.
    pub max_entries: usize,
    /// Largest uncompressed entry, counted while inflating.
    pub max_entry_size: u64,
    /// Largest sum of the uncompressed entries.
    pub max_total_size: u64,
    /// Largest archive file.
    pub max_archive_size: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries: 256,
            max_entry_size: 4 * MIB,
            max_total_size: 16 * MIB,
            max_archive_size: 16 * MIB,
        }
    }
}

const MIB: u64 = 1024 * 1024;

/// One file of the archive, read and size-checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The name as stored, `/`-separated, checked safe.
    pub name: String,
    pub data: Vec<u8>,
    /// Lowercase hex sha256 of `data`.
    pub sha256: String,
}

/// A credentials archive that passed intake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    /// Lowercase hex sha256 of the archive file.
    pub sha256: String,
    /// The file entries, in archive order.
    pub entries: Vec<Entry>,
    /// Directory entries, ignored but reported.
    pub directories: Vec<String>,
}

impl Archive {
    /// The root entry with this exact name.
    pub fn entry(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }
}

/// Reads and checks the archive at `path`. `Error::Io` when the file cannot
/// be read, `Error::Archive` when its content is refused.
pub fn read(path: &Path, limits: &Limits) -> Result<Archive> {
    let label = escape::escape_bytes(
        path.file_name()
            .unwrap_or(path.as_os_str())
            .as_encoded_bytes(),
    );
    let file = files::open_regular(path, "the credentials.zip your OTA server gave you")?;
    let mut bytes = Vec::new();
    // One byte over the limit tells "too large" from "exactly the limit".
    file.take(limits.max_archive_size + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io("read", path, e))?;
    parse(&bytes, limits).map_err(|source| Error::Archive {
        file: label,
        source,
    })
}

/// Checks and reads an archive held in memory.
pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Archive, ArchiveError> {
    if bytes.len() as u64 > limits.max_archive_size {
        return Err(ArchiveError::ArchiveTooLarge {
            size: bytes.len() as u64,
            limit: limits.max_archive_size,
        });
    }
    // The zip crate trusts the end record's count and reads names from the
    // central directory only; other tools walk the records or read the local
    // headers. Walk the structure ourselves first and refuse any place where
    // two readers could see two different archives.
    let layout = match end_record(bytes) {
        Some(end) => Some(walk(bytes, &end, limits)?),
        None => None,
    };
    let mut zip = ZipArchive::new(Cursor::new(bytes)).map_err(|e| open_error(bytes, e))?;
    if zip.offset() != 0 {
        return Err(ArchiveError::NotAZip {
            detail: format!(
                "{} of other data before the zip",
                counted(zip.offset(), "byte", "bytes")
            ),
        });
    }
    let Some(layout) = layout else {
        // The zip crate found an end record that does not end the file.
        return Err(ArchiveError::NotAZip {
            detail: "other data follows the end of the zip".into(),
        });
    };
    // The zip crate keeps one entry per name, silently.
    let mut seen = HashSet::new();
    for name in &layout.names {
        if !seen.insert(name.as_slice()) {
            return Err(ArchiveError::DuplicateEntry {
                entry: display_name(name),
            });
        }
    }
    if zip.len() != layout.names.len() {
        return Err(ArchiveError::Inconsistent {
            detail: format!(
                "the zip reader sees {}, the central directory holds {}",
                counted(zip.len() as u64, "entry", "entries"),
                layout.names.len()
            ),
        });
    }
    if zip.is_empty() {
        return Err(ArchiveError::Empty);
    }

    let mut entries = Vec::new();
    let mut directories = Vec::new();
    let mut total: u64 = 0;
    for index in 0..zip.len() {
        let (name, is_dir) = {
            let raw = zip
                .by_index_raw(index)
                .map_err(|e| truncated(format!("entry {index}: {e}")))?;
            if layout.names.get(index).map(Vec::as_slice) != Some(raw.name_raw()) {
                return Err(ArchiveError::Inconsistent {
                    detail: format!(
                        "the zip reader sees entry {index} as '{}', the central directory does not",
                        display_name(raw.name_raw())
                    ),
                });
            }
            let name = checked_name(raw.name_raw())?;
            if raw.unix_mode().is_some_and(is_symlink_mode) {
                return Err(ArchiveError::SymlinkEntry { entry: name });
            }
            if raw.encrypted() {
                return Err(ArchiveError::Encrypted { entry: name });
            }
            if raw.size() > limits.max_entry_size {
                return Err(ArchiveError::EntryTooLarge {
                    entry: name,
                    limit: limits.max_entry_size,
                });
            }
            (name, raw.is_dir())
        };
        if is_dir {
            directories.push(name);
            continue;
        }
        let data = inflate(&mut zip, index, &name, limits.max_entry_size)?;
        total += data.len() as u64;
        if total > limits.max_total_size {
            return Err(ArchiveError::TotalTooLarge {
                limit: limits.max_total_size,
            });
        }
        let sha256 = sha256_hex(&data);
        entries.push(Entry { name, data, sha256 });
    }
    if entries.is_empty() {
        return Err(ArchiveError::Empty);
    }
    check_subfolders(&entries)?;
    Ok(Archive {
        sha256: sha256_hex(bytes),
        entries,
        directories,
    })
}

/// Inflates one entry, counting the bytes as they come: never more than
/// `limit` are kept, whatever the headers claim.
fn inflate(
    zip: &mut ZipArchive<Cursor<&[u8]>>,
    index: usize,
    name: &str,
    limit: u64,
) -> Result<Vec<u8>, ArchiveError> {
    let unreadable = |detail: String| ArchiveError::Unreadable {
        entry: name.to_string(),
        detail,
    };
    let file = zip.by_index(index).map_err(|e| unreadable(e.to_string()))?;
    let mut data = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut data)
        .map_err(|e| unreadable(e.to_string()))?;
    if data.len() as u64 > limit {
        return Err(ArchiveError::EntryTooLarge {
            entry: name.to_string(),
            limit,
        });
    }
    Ok(data)
}

fn open_error(bytes: &[u8], error: ZipError) -> ArchiveError {
    // A file that starts like a zip but whose directory cannot be found or
    // read was cut short or damaged; anything else is not a zip at all.
    let looks_like_zip = bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06");
    let detail = match &error {
        ZipError::InvalidArchive(m) => m.to_string(),
        ZipError::UnsupportedArchive(m) => m.to_string(),
        other => other.to_string(),
    };
    if looks_like_zip {
        truncated(detail)
    } else if bytes.is_empty() {
        ArchiveError::NotAZip {
            detail: "the file is empty".into(),
        }
    } else {
        ArchiveError::NotAZip { detail }
    }
}

fn truncated(detail: String) -> ArchiveError {
    ArchiveError::Truncated { detail }
}

/// `S_IFLNK` in the Unix mode bits of an entry's external attributes.
fn is_symlink_mode(mode: u32) -> bool {
    mode & 0o170000 == 0o120000
}

/// The entry name as text that is safe to print: control characters, NUL
/// and non-UTF-8 bytes are escaped.
fn display_name(raw: &[u8]) -> String {
    escape::escape_bytes(raw)
}

/// Checks an entry name and returns it as a string. Names are compared by
/// their bytes everywhere, as aktualizr and the garage tools do.
fn checked_name(raw: &[u8]) -> Result<String, ArchiveError> {
    let refuse = |reason| ArchiveError::UnsafeEntryName {
        entry: display_name(raw),
        reason,
    };
    if raw.is_empty() {
        return Err(refuse("it is empty"));
    }
    if raw.contains(&0) {
        return Err(refuse("it contains a NUL byte"));
    }
    if raw.contains(&b'\\') {
        return Err(refuse("it contains a backslash"));
    }
    if raw.starts_with(b"/") {
        return Err(refuse("it is an absolute path"));
    }
    if raw.len() >= 2 && raw[1] == b':' && raw[0].is_ascii_alphabetic() {
        return Err(refuse("it starts with a drive letter"));
    }
    let name = std::str::from_utf8(raw).map_err(|_| refuse("it is not valid UTF-8"))?;
    // Controls move the cursor or break the line; format characters
    // (U+202E, U+200B) make a name read as another: `autoprov.url` and
    // `autoprov.url\u{200b}` look the same.
    if name.chars().any(escape::is_hidden) {
        return Err(refuse(
            "it contains a control character, a line break or an invisible format character",
        ));
    }
    let trimmed = name.strip_suffix('/').unwrap_or(name);
    for part in trimmed.split('/') {
        match part {
            ".." => return Err(refuse("it contains `..`")),
            "." => return Err(refuse("it contains `.` as a path component")),
            "" => return Err(refuse("it contains an empty path component")),
            _ => {}
        }
    }
    Ok(name.to_string())
}

/// Credentials that sit only in a subfolder (`creds/autoprov.url`) are never
/// found by the tools; refuse rather than stage an image without them.
fn check_subfolders(entries: &[Entry]) -> Result<(), ArchiveError> {
    for entry in entries {
        let Some((_, base)) = entry.name.rsplit_once('/') else {
            continue;
        };
        if catalogue::lookup(base).is_some() && !entries.iter().any(|e| e.name == base) {
            return Err(ArchiveError::InSubfolder {
                entry: entry.name.clone(),
                root_name: base.to_string(),
            });
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The structure, walked by hand (APPNOTE.TXT 6.3.10, section 4.3)

const LOCAL_SIGNATURE: &[u8] = b"PK\x03\x04";
const CENTRAL_SIGNATURE: &[u8] = b"PK\x01\x02";
const END_SIGNATURE: &[u8] = b"PK\x05\x06";
const ZIP64_LOCATOR_SIGNATURE: &[u8] = b"PK\x06\x07";
/// Fixed sizes of the end record, a central and a local header.
const END_FIXED: usize = 22;
const CENTRAL_FIXED: usize = 46;
const LOCAL_FIXED: usize = 30;
/// Compression methods: stored, deflated, and WinZip's AES (APPNOTE 4.4.5,
/// and the AE-x specification).
const METHOD_STORED: u16 = 0;
const METHOD_DEFLATED: u16 = 8;
const METHOD_AES: u16 = 99;

/// The end of central directory record (APPNOTE 4.3.16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EndRecord {
    /// Where the record starts: the central directory must end here.
    at: usize,
    disk: u16,
    directory_disk: u16,
    entries_on_disk: u16,
    entries: u16,
    directory_size: u32,
    directory_offset: u32,
}

/// The end record that ends the file: the last signature whose comment
/// length reaches exactly the last byte. `None` when there is none.
fn end_record(bytes: &[u8]) -> Option<EndRecord> {
    let last = bytes.len().checked_sub(END_FIXED)?;
    // The comment is at most 65535 bytes.
    let first = last.saturating_sub(usize::from(u16::MAX));
    (first..=last).rev().find_map(|at| {
        let record = &bytes[at..];
        if !record.starts_with(END_SIGNATURE)
            || le16(record, 20)? as usize != record.len() - END_FIXED
        {
            return None;
        }
        Some(EndRecord {
            at,
            disk: le16(record, 4)?,
            directory_disk: le16(record, 6)?,
            entries_on_disk: le16(record, 8)?,
            entries: le16(record, 10)?,
            directory_size: le32(record, 12)?,
            directory_offset: le32(record, 16)?,
        })
    })
}

/// What the walk found: the central directory's names, in order.
#[derive(Debug)]
struct Layout {
    names: Vec<Vec<u8>>,
}

/// Walks the central directory the end record points at, record by record,
/// and each entry's local header. Refuses zip64 and split archives, data
/// before the zip, an end record whose count or size disagrees with the
/// records, a local header whose name differs from the central one, and
/// encrypted or unknown compression methods, each with its own message.
fn walk(bytes: &[u8], end: &EndRecord, limits: &Limits) -> Result<Layout, ArchiveError> {
    let zip64 = end.entries == u16::MAX
        || end.entries_on_disk == u16::MAX
        || end.directory_size == u32::MAX
        || end.directory_offset == u32::MAX
        || (end.at >= 20 && bytes[end.at - 20..].starts_with(ZIP64_LOCATOR_SIGNATURE));
    if zip64 {
        return Err(ArchiveError::Zip64);
    }
    if end.disk != 0 || end.directory_disk != 0 || end.entries_on_disk != end.entries {
        return Err(ArchiveError::Inconsistent {
            detail: "the end record describes an archive split over several disks".into(),
        });
    }
    let size = end.directory_size as usize;
    let offset = end.directory_offset as usize;
    let Some(start) = end.at.checked_sub(size) else {
        return Err(ArchiveError::Truncated {
            detail: format!(
                "the end record declares a central directory of {size} bytes, but only {} bytes come before it",
                end.at
            ),
        });
    };
    if start > offset {
        // What `cat prefix.sh archive.zip` makes: every offset is short by
        // the length of the prefix.
        return Err(ArchiveError::NotAZip {
            detail: format!(
                "{} of other data before the zip",
                counted((start - offset) as u64, "byte", "bytes")
            ),
        });
    }
    if start < offset {
        return Err(ArchiveError::Inconsistent {
            detail: format!(
                "the end record puts the central directory at byte {offset}, but its {size} bytes start at byte {start}"
            ),
        });
    }

    let mut names = Vec::new();
    let mut first_local = None::<usize>;
    let mut beyond: usize = 0;
    let mut pos = start;
    while pos < end.at {
        let damaged = |what: &str| ArchiveError::Truncated {
            detail: format!("central directory record {} {what}", names.len() + 1),
        };
        let record = &bytes[pos..end.at];
        if !record.starts_with(CENTRAL_SIGNATURE) || record.len() < CENTRAL_FIXED {
            return Err(damaged("is not a central directory header"));
        }
        let field = |at: usize| le16(record, at).map_or(0, usize::from);
        let (name_len, extra_len, comment_len) = (field(28), field(30), field(32));
        let length = CENTRAL_FIXED + name_len + extra_len + comment_len;
        let Some(name) = record.get(CENTRAL_FIXED..CENTRAL_FIXED + name_len) else {
            return Err(damaged("runs past the central directory"));
        };
        if record.len() < length {
            return Err(damaged("runs past the central directory"));
        }
        pos += length;
        if names.len() >= limits.max_entries {
            // Past the limit: only counted, for the message.
            beyond += 1;
            continue;
        }
        let entry = || display_name(name);
        let flags = le16(record, 8).unwrap_or(0);
        let method = le16(record, 10).unwrap_or(0);
        if flags & 1 != 0 || method == METHOD_AES {
            return Err(ArchiveError::Encrypted { entry: entry() });
        }
        if method != METHOD_STORED && method != METHOD_DEFLATED {
            return Err(ArchiveError::UnsupportedMethod {
                entry: entry(),
                method,
            });
        }
        let local_at = le32(record, 42).map_or(usize::MAX, |o| o as usize);
        let local = bytes.get(local_at..).unwrap_or_default();
        if !local.starts_with(LOCAL_SIGNATURE) || local.len() < LOCAL_FIXED {
            return Err(ArchiveError::Truncated {
                detail: format!("entry '{}' has no local header at byte {local_at}", entry()),
            });
        }
        let local_name_len = le16(local, 26).map_or(0, usize::from);
        let local_name = local
            .get(LOCAL_FIXED..LOCAL_FIXED + local_name_len)
            .unwrap_or_default();
        if local_name != name {
            return Err(ArchiveError::LocalNameMismatch {
                entry: entry(),
                local: display_name(local_name),
            });
        }
        first_local = Some(first_local.map_or(local_at, |f| f.min(local_at)));
        names.push(name.to_vec());
    }
    if beyond > 0 {
        return Err(ArchiveError::TooManyEntries {
            count: names.len() + beyond,
            limit: limits.max_entries,
        });
    }
    if names.len() != usize::from(end.entries) {
        return Err(ArchiveError::EntryCountMismatch {
            declared: end.entries,
            found: names.len(),
        });
    }
    if let Some(first) = first_local.filter(|&f| f > 0) {
        // What `zip -A` makes of a prefixed archive: the offsets are
        // adjusted, so only the first entry's place shows the prefix.
        return Err(ArchiveError::NotAZip {
            detail: format!(
                "{} of other data before the zip",
                counted(first as u64, "byte", "bytes")
            ),
        });
    }
    Ok(Layout { names })
}

fn le16(bytes: &[u8], at: usize) -> Option<u16> {
    let b = bytes.get(at..at + 2)?;
    Some(u16::from_le_bytes([b[0], b[1]]))
}

fn le32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 4)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_names_are_refused_with_the_reason() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "empty"),
            (b"/etc/passwd", "absolute"),
            (b"../autoprov.url", "`..`"),
            (b"a/../../b", "`..`"),
            (b"dir\\autoprov.url", "backslash"),
            (b"auto\0prov.url", "NUL"),
            (b"a\nb", "control"),
            (b"C:/x", "drive letter"),
            (b"./autoprov.url", "`.`"),
            (b"a//b", "empty path component"),
            (b"\xff\xfe", "UTF-8"),
        ];
        for (raw, word) in cases {
            match checked_name(raw) {
                Err(ArchiveError::UnsafeEntryName { reason, .. }) => {
                    assert!(reason.contains(word), "{raw:?}: {reason}")
                }
                other => panic!("{raw:?}: expected a refusal, got {other:?}"),
            }
        }
    }

    #[test]
    fn plain_names_and_folders_pass() {
        for name in ["autoprov.url", "keys/", "keys/priv.key", "a.b-c_d"] {
            assert_eq!(checked_name(name.as_bytes()).as_deref(), Ok(name));
        }
    }

    #[test]
    fn printed_names_are_escaped() {
        assert_eq!(display_name(b"a\nb\0"), "a\\nb\\0");
    }

    #[test]
    fn symlink_mode_is_recognised() {
        assert!(is_symlink_mode(0o120777));
        assert!(!is_symlink_mode(0o100644));
        assert!(!is_symlink_mode(0o040755));
        assert!(!is_symlink_mode(0o140755));
    }
}
