//! zip, read from memory as unzip reads it.
//!
//! - The archive is found by its end record anywhere in the last 65,557
//!   bytes (22 + the longest comment), so a zip appended to a shell script
//!   or any other prefix is read; like unzip, the central directory is
//!   looked for where the end record says it ends (`extra_bytes`, the
//!   prefix's length, is added to every offset), then at its stated offset.
//! - ZIP64 end records and extra fields are read.
//! - Local headers are also walked from the start of the archive, for zips
//!   whose central directory is missing or damaged; each local header
//!   offset is one member however many central entries point at it.
//! - A member's method is its local header's: that is what unzip inflates
//!   (a member "stored" in the central directory but "deflated" in its
//!   local header is deflated).
//!
//! Nothing is decompressed here, and nothing is allocated beyond names and
//! one entry per member (at most `max`).

use std::collections::BTreeMap;

const LOCAL: &[u8] = b"PK\x03\x04";
const CENTRAL: &[u8] = b"PK\x01\x02";
const END: &[u8] = b"PK\x05\x06";
const END64: &[u8] = b"PK\x06\x06";
const LOCATOR64: &[u8] = b"PK\x06\x07";
const DESCRIPTOR: &[u8] = b"PK\x07\x08";
/// The end record (22 bytes) and the longest comment.
const TAIL: usize = 22 + 0xffff;

/// One member: its local header, and what the central directory says.
#[derive(Debug, Clone)]
pub struct ZipMember<'a> {
    /// The central directory's name when there is an entry, else the
    /// local header's.
    pub name: Vec<u8>,
    /// From the LOCAL header.
    pub method: u16,
    #[allow(dead_code)] // what the tests check; the scanner needs none of it
    pub central_method: Option<u16>,
    pub encrypted: bool,
    /// The uncompressed size, when a header knows it.
    pub size: Option<u64>,
    /// The compressed bytes: from the data start to its compressed size
    /// (cut at the end of the archive), or to the end of the archive when
    /// the size is unknown (a data descriptor).
    pub data: &'a [u8],
    /// The local header's offset in the data.
    #[allow(dead_code)] // what the tests check; the scanner needs none of it
    pub offset: usize,
}

/// The members of a zip, sorted by offset, and what could not be listed.
#[derive(Debug)]
pub struct ZipMembers<'a> {
    members: std::vec::IntoIter<ZipMember<'a>>,
    /// Whether an end record and a central directory were found.
    #[allow(dead_code)] // what the tests check; the scanner needs none of it
    pub central: bool,
    /// Central entries whose local header cannot be read.
    pub unreadable: usize,
    /// Whether there are more members than `max`: those were not listed.
    pub more: bool,
}

impl<'a> Iterator for ZipMembers<'a> {
    type Item = ZipMember<'a>;
    fn next(&mut self) -> Option<ZipMember<'a>> {
        self.members.next()
    }
}

/// Whether the data holds a zip: a zip magic at 0, or an end record whose
/// central directory is where it says.
pub fn find(data: &[u8]) -> bool {
    data.starts_with(LOCAL) || data.starts_with(END) || end_record(data).is_some()
}

/// The members of the zip in `data`, at most `max` of them.
pub fn members(data: &[u8], max: usize) -> ZipMembers<'_> {
    let mut more = false;
    let mut central: BTreeMap<usize, Central> = BTreeMap::new();
    let end = end_record(data);
    if let Some(end) = &end {
        let mut at = end.start;
        let mut count = 0;
        while let Some(entry) = central_entry(data, at) {
            if count == max {
                more = true;
                break;
            }
            count += 1;
            at = entry.next;
            if let Some(local) = add(entry.offset, end.shift) {
                central.entry(local).or_insert(entry);
            }
        }
    }
    // The local headers, walked from the first one.
    let start = match (central.keys().next(), &end) {
        (Some(&first), _) => Some(first),
        _ if data.starts_with(LOCAL) => Some(0),
        (None, Some(end)) => data
            .get(..end.start)
            .and_then(|before| before.windows(4).position(|w| w == LOCAL)),
        (None, None) => None,
    };
    let mut found: BTreeMap<usize, ZipMember<'_>> = BTreeMap::new();
    let mut at = start;
    while let Some(offset) = at {
        if found.len() == max {
            more = true;
            break;
        }
        let Some((member, next)) = local(data, offset, central.get(&offset), true) else {
            break;
        };
        found.insert(offset, member);
        at = next.filter(|&n| n > offset);
    }
    let mut unreadable = 0;
    for (&offset, entry) in &central {
        if found.contains_key(&offset) {
            continue;
        }
        if found.len() == max {
            more = true;
            break;
        }
        match local(data, offset, Some(entry), false) {
            Some((member, _)) => {
                found.insert(offset, member);
            }
            None => unreadable += 1,
        }
    }
    ZipMembers {
        members: found.into_values().collect::<Vec<_>>().into_iter(),
        central: end.is_some(),
        unreadable,
        more,
    }
}

/// Where the central directory is, and what to add to the offsets it
/// holds (the length of a prefix added after the zip was written).
#[derive(Debug)]
struct End {
    start: usize,
    shift: i64,
}

/// The last end record in the tail whose central directory is found.
fn end_record(data: &[u8]) -> Option<End> {
    let from = data.len().saturating_sub(TAIL);
    let tail = data.get(from..)?;
    // Every byte of every file of an image goes past here: memchr's
    // searcher (SIMD, prefiltered on the record's rare bytes 05 06), not
    // a compare at each offset (that took a quarter of a folder audit).
    let candidates: Vec<usize> = memchr::memmem::find_iter(tail, END)
        .map(|i| from + i)
        .collect();
    candidates.into_iter().rev().find_map(|at| locate(data, at))
}

/// The central directory of the end record at `at`, if it is where the
/// record says it ends (then at its stated offset).
fn locate(data: &[u8], at: usize) -> Option<End> {
    let rec = data.get(at..at.checked_add(22)?)?;
    let mut entries = u64::from(le16(rec, 10)?);
    let mut size = u64::from(le32(rec, 12)?);
    let mut offset = u64::from(le32(rec, 16)?);
    // Where the directory ends: the end record, or the ZIP64 end record.
    let mut ends = at;
    if let Some(locator) = at.checked_sub(20).and_then(|l| data.get(l..at)) {
        if locator.starts_with(LOCATOR64) {
            let stated = le64(locator, 8).and_then(|o| usize::try_from(o).ok());
            let before = at.checked_sub(20 + 56);
            let rec64 = [stated, before]
                .into_iter()
                .flatten()
                .find(|&o| data.get(o..).is_some_and(|d| d.starts_with(END64)));
            if let Some(o) = rec64 {
                let r = data.get(o..o.checked_add(56)?)?;
                entries = le64(r, 32)?;
                size = le64(r, 40)?;
                offset = le64(r, 48)?;
                ends = o;
            }
        }
    }
    let size = usize::try_from(size).ok()?;
    let offset = usize::try_from(offset).ok()?;
    let is_dir = |o: usize| {
        (entries == 0 && o == ends) || data.get(o..).is_some_and(|d| d.starts_with(CENTRAL))
    };
    let real = ends.checked_sub(size)?;
    if is_dir(real) {
        let shift = i64::try_from(real).ok()? - i64::try_from(offset).ok()?;
        return Some(End { start: real, shift });
    }
    is_dir(offset).then_some(End {
        start: offset,
        shift: 0,
    })
}

/// A central directory entry.
#[derive(Debug)]
struct Central {
    name: Vec<u8>,
    method: u16,
    flags: u16,
    compressed: u64,
    size: u64,
    offset: u64,
    next: usize,
}

fn central_entry(data: &[u8], at: usize) -> Option<Central> {
    let h = data.get(at..at.checked_add(46)?)?;
    if !h.starts_with(CENTRAL) {
        return None;
    }
    let (n, e, c) = (
        usize::from(le16(h, 28)?),
        usize::from(le16(h, 30)?),
        usize::from(le16(h, 32)?),
    );
    let name = data.get(at + 46..at + 46 + n)?;
    let extra = data.get(at + 46 + n..at + 46 + n + e)?;
    let mut size = u64::from(le32(h, 24)?);
    let mut compressed = u64::from(le32(h, 20)?);
    let mut offset = u64::from(le32(h, 42)?);
    if let Some(z) = zip64(extra) {
        // Only the fields whose 32-bit value is all ones are there, in
        // this order.
        let mut fields = z.chunks_exact(8).filter_map(|f| le64(f, 0));
        for field in [&mut size, &mut compressed, &mut offset] {
            if *field == 0xffff_ffff {
                match fields.next() {
                    Some(v) => *field = v,
                    None => break,
                }
            }
        }
    }
    Some(Central {
        name: name.to_vec(),
        method: le16(h, 10)?,
        flags: le16(h, 8)?,
        compressed,
        size,
        offset,
        next: at + 46 + n + e + c,
    })
}

/// The member whose local header is at `at`, and where the next local
/// header should be (`None` when that is not known, or not `walking`: the
/// search past data of unknown size is done for the walk only, once per
/// member, so that it stays linear in the data).
fn local<'a>(
    data: &'a [u8],
    at: usize,
    central: Option<&Central>,
    walking: bool,
) -> Option<(ZipMember<'a>, Option<usize>)> {
    let h = data.get(at..at.checked_add(30)?)?;
    if !h.starts_with(LOCAL) {
        return None;
    }
    let flags = le16(h, 6)?;
    let (n, e) = (usize::from(le16(h, 26)?), usize::from(le16(h, 28)?));
    let name = data.get(at + 30..at + 30 + n)?;
    let extra = data.get(at + 30 + n..at + 30 + n + e)?;
    let start = at + 30 + n + e;
    let mut size = u64::from(le32(h, 22)?);
    let mut compressed = u64::from(le32(h, 18)?);
    let wide = zip64(extra);
    if let Some(z) = wide {
        // The local ZIP64 field holds both sizes.
        if size == 0xffff_ffff {
            size = le64(z, 0).unwrap_or(size);
        }
        if compressed == 0xffff_ffff {
            compressed = le64(z, 8).unwrap_or(compressed);
        }
    }
    let descriptor = flags & 8 != 0;
    let unknown = |v: u64| (descriptor && v == 0) || v == 0xffff_ffff;
    let compressed = if unknown(compressed) {
        central.map(|c| c.compressed).filter(|&c| c != 0xffff_ffff)
    } else {
        Some(compressed)
    };
    let size = match central {
        Some(c) if c.size != 0xffff_ffff => Some(c.size),
        _ if unknown(size) => None,
        _ => Some(size),
    };
    let rest = data.get(start..)?;
    let (body, next) = match compressed.and_then(|c| usize::try_from(c).ok()) {
        Some(c) => {
            let body = rest.get(..c).unwrap_or(rest);
            let mut next = start.checked_add(c);
            if descriptor {
                next = next.map(|n| skip_descriptor(data, n, wide.is_some()));
            }
            (body, next)
        }
        None if walking => (rest, find_descriptor(data, start, wide.is_some())),
        None => (rest, None),
    };
    let member = ZipMember {
        name: central.map_or_else(|| name.to_vec(), |c| c.name.clone()),
        method: le16(h, 8)?,
        central_method: central.map(|c| c.method),
        encrypted: flags & 1 != 0 || central.is_some_and(|c| c.flags & 1 != 0),
        size,
        data: body,
        offset: at,
    };
    Some((member, next))
}

/// Past the data descriptor at `at`: with or without its signature, 32 or
/// 64-bit sizes.
fn skip_descriptor(data: &[u8], at: usize, wide: bool) -> usize {
    let sizes = if wide { 16 } else { 8 };
    let signed = data.get(at..).is_some_and(|d| d.starts_with(DESCRIPTOR));
    at.saturating_add(if signed { 8 + sizes } else { 4 + sizes })
}

/// Where the next local header is after data of unknown size starting at
/// `start`: past the first signed descriptor whose compressed size is the
/// distance from `start` (one scan, so a walk is linear in the data).
fn find_descriptor(data: &[u8], start: usize, wide: bool) -> Option<usize> {
    let rest = data.get(start..)?;
    rest.windows(4)
        .enumerate()
        .filter(|(_, w)| *w == DESCRIPTOR)
        .find_map(|(i, _)| {
            let d = rest.get(i..)?;
            let stated = if wide {
                le64(d, 8)?
            } else {
                u64::from(le32(d, 8)?)
            };
            (stated == i as u64).then(|| skip_descriptor(data, start + i, wide))
        })
}

/// The ZIP64 extended information field (id 1) of an extra field.
fn zip64(mut extra: &[u8]) -> Option<&[u8]> {
    while extra.len() >= 4 {
        let id = le16(extra, 0)?;
        let len = usize::from(le16(extra, 2)?);
        let body = extra.get(4..4 + len)?;
        if id == 1 {
            return Some(body);
        }
        extra = extra.get(4 + len..)?;
    }
    None
}

/// An offset from the central directory, shifted by the prefix's length.
fn add(offset: u64, shift: i64) -> Option<usize> {
    let at = i64::try_from(offset).ok()?.checked_add(shift)?;
    usize::try_from(at).ok()
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn le64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{scratch, sh, variants};
    use super::*;
    use std::io::Read;

    fn inflate(raw: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::DeflateDecoder::new(raw)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    /// A member's content: stored or deflated (by its local method).
    fn content(m: &ZipMember<'_>) -> Vec<u8> {
        match m.method {
            0 => m.data.to_vec(),
            8 => inflate(m.data),
            other => panic!("method {other}"),
        }
    }

    fn listing(data: &[u8]) -> Vec<(String, Vec<u8>)> {
        members(data, 10_000)
            .filter(|m| !m.name.ends_with(b"/"))
            .map(|m| (String::from_utf8_lossy(&m.name).into_owned(), content(&m)))
            .collect()
    }

    fn made_by_zip(name: &str, flags: &str) -> (super::super::testkit::Scratch, Vec<u8>) {
        let dir = scratch(name);
        sh(
            &dir,
            &format!(
                "mkdir -p d && printf 'hello secret' > d/s.txt && seq 1 2000 > d/n.txt \
                 && zip -q {flags} z.zip d/s.txt d/n.txt"
            ),
        );
        let data = std::fs::read(dir.join("z.zip")).unwrap();
        (dir, data)
    }

    fn want() -> Vec<(String, Vec<u8>)> {
        let numbers: String = (1..=2000).map(|i| format!("{i}\n")).collect();
        vec![
            ("d/s.txt".into(), b"hello secret".to_vec()),
            ("d/n.txt".into(), numbers.into_bytes()),
        ]
    }

    #[test]
    fn zips_made_by_zip_are_read() {
        let (_, data) = made_by_zip("zip-plain", "");
        assert!(find(&data));
        let all: Vec<_> = members(&data, 100).collect();
        assert_eq!(all.iter().map(|m| m.method).collect::<Vec<_>>(), [0, 8]);
        assert_eq!(all[1].size, Some(want()[1].1.len() as u64));
        assert_eq!(all[0].central_method, Some(0));
        assert_eq!(listing(&data), want());
        // Streamed (`-fd`: data descriptors, sizes unknown in the local
        // headers), with the central directory cut off: the local walk
        // finds every member, past the descriptors.
        let (dir, _) = made_by_zip("zip-streamed", "");
        sh(&dir, "cat d/n.txt | zip -q -fz- - - | cat > p.zip");
        let piped = std::fs::read(dir.join("p.zip")).unwrap();
        let cut = piped.windows(4).position(|w| w == CENTRAL).unwrap();
        let walked: Vec<_> = members(&piped[..cut], 10).collect();
        assert_eq!(walked.len(), 1);
        assert_eq!(walked[0].size, None);
        assert_eq!(inflate(walked[0].data), want()[1].1);
        let two = [&piped[..cut], &piped[..cut]].concat();
        assert_eq!(
            members(&two, 10).count(),
            2,
            "walked past the first descriptor"
        );
        assert!(!find(&piped[1..cut]));
    }

    #[test]
    fn a_zip_inside_a_shell_script_is_found_as_unzip_finds_it() {
        let (dir, _) = made_by_zip("zip-sfx", "");
        sh(&dir, "printf '#!/bin/sh\\necho installer\\nexit 0\\n' > script && cat script z.zip > sfx && test \"$(unzip -p sfx d/s.txt 2>/dev/null)\" = 'hello secret'");
        let sfx = std::fs::read(dir.join("sfx")).unwrap();
        assert!(find(&sfx));
        assert_eq!(listing(&sfx), want());
        assert!(
            members(&sfx, 10).all(|m| m.central_method.is_some()),
            "central entries matched after the shift"
        );
        // `zip -A` fixes the offsets: the same members.
        sh(&dir, "cp sfx fixed && zip -q -A fixed");
        assert_eq!(listing(&std::fs::read(dir.join("fixed")).unwrap()), want());
        // Text around it, and no zip at all.
        let mut trailing = sfx.clone();
        trailing.extend(b"\n# trailing comment\n");
        assert_eq!(listing(&trailing), want());
        assert!(!find(b"#!/bin/sh\nPK\x05\x06 nothing"));
    }

    #[test]
    fn zip64_records_are_read() {
        let (dir, _) = made_by_zip("zip64", "");
        // `zip -fz` forces ZIP64 records on a file.
        sh(&dir, "rm z.zip && zip -q -fz z.zip d/s.txt d/n.txt");
        let data = std::fs::read(dir.join("z.zip")).unwrap();
        assert!(data.windows(4).any(|w| w == END64));
        assert_eq!(listing(&data), want());
    }

    #[test]
    fn the_local_method_wins_over_the_central_one() {
        let (_, mut data) = made_by_zip("zip-method", "");
        // d/n.txt is deflated; the central directory says stored.
        let at = data
            .windows(4)
            .enumerate()
            .filter(|(_, w)| *w == CENTRAL)
            .nth(1)
            .unwrap()
            .0;
        data[at + 10..at + 12].copy_from_slice(&0u16.to_le_bytes());
        let m: Vec<_> = members(&data, 10).collect();
        assert_eq!((m[1].method, m[1].central_method), (8, Some(0)));
        assert_eq!(content(&m[1]), want()[1].1);
    }

    #[test]
    fn central_entries_sharing_a_local_header_are_one_member() {
        let (_, data) = made_by_zip("zip-shared", "");
        let first = data.windows(4).position(|w| w == CENTRAL).unwrap();
        let entry = central_entry(&data, first).unwrap();
        let one = data[first..entry.next].to_vec();
        let mut bomb = data[..first].to_vec();
        let cd = bomb.len();
        for _ in 0..2000 {
            bomb.extend(&one);
        }
        let size = bomb.len() - cd;
        bomb.extend(END);
        bomb.extend([0, 0, 0, 0]);
        bomb.extend(2000u16.to_le_bytes());
        bomb.extend(2000u16.to_le_bytes());
        bomb.extend((size as u32).to_le_bytes());
        bomb.extend((cd as u32).to_le_bytes());
        bomb.extend([0, 0]);
        let listed = members(&bomb, 5000);
        assert!(!listed.more);
        // One member from the 2,000 entries, and the local walk finds the
        // second local header too.
        let offsets: Vec<_> = listed.map(|m| m.offset).collect();
        assert_eq!(offsets.len(), 2);
        assert_eq!(offsets[0], 0);
        // `max` bounds the central entries read.
        assert!(members(&bomb, 10).more);
    }

    #[test]
    fn hostile_variants_do_not_panic() {
        let (_, good) = made_by_zip("zip-hostile", "");
        for v in variants(&good, 71, 600) {
            for m in members(&v, 100) {
                assert!(m.offset < v.len());
            }
            find(&v);
        }
        // Huge stated sizes and offsets: nothing beyond the data.
        let mut data = good.clone();
        let at = data.windows(4).position(|w| w == CENTRAL).unwrap();
        data[at + 20..at + 28].fill(0xff);
        data[at + 42..at + 46].fill(0xff);
        data[18..22].fill(0xff);
        let m: Vec<_> = members(&data, 10).collect();
        assert!(m.iter().all(|m| m.data.len() <= data.len()));
    }
}
