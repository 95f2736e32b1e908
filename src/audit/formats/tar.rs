//! tar: ustar, GNU, pax and v7 headers, read as GNU tar extracts them.
//!
//! - Sizes in octal or base-256 (GNU, star); a pax `size` overrides the
//!   header's.
//! - Names from GNU long-name/long-link members (`L`, `K`), pax `path`,
//!   `linkpath` and `GNU.sparse.name`, or ustar's prefix + name.
//! - Old GNU sparse (`S`): the data stored is the non-hole parts, handed out
//!   as is; the extension headers of its map are read through.
//! - Contiguous (`7`) and unknown type flags are files, as GNU tar extracts
//!   them.
//! - Like `tar -i` (`--ignore-zeros`), zero blocks are skipped and reading
//!   goes on until the stream ends: data after the end-of-archive marker is
//!   read. A header with a bad checksum is skipped block by block (GNU tar
//!   searches on for the next good one too); the caller searches the raw
//!   bytes anyway.

use std::io::{self, Read};

use super::{bad, number, until_nul, Body, EntryKind, Header, Members};

const BLOCK: usize = 512;
/// The largest long name, long link or pax record set held in memory.
const MAX_META: u64 = 1 << 20;
/// The pax global keys applied to the members after them.
const GLOBAL_KEYS: [&[u8]; 4] = [b"path", b"linkpath", b"size", b"GNU.sparse.name"];

/// A tar read member by member.
#[derive(Debug)]
pub struct Tar<R> {
    body: Body<R>,
    /// Padding after the current member's data, to the next block.
    pad: u64,
    /// The pax global ('g') records applied to every member after them:
    /// `path`, `linkpath`, `size`, `GNU.sparse.name` (the last of each;
    /// global xattrs are left to the raw search, so that no member copies
    /// up to a MiB of them).
    global: Vec<(Vec<u8>, Vec<u8>)>,
}

impl<R: Read> Tar<R> {
    pub fn new(inner: R) -> Self {
        Tar {
            body: Body::new(inner),
            pad: 0,
            global: Vec::new(),
        }
    }

    /// The next header block: `None` at the end of the stream. Zero blocks
    /// and blocks whose checksum is wrong are read through.
    fn block(&mut self) -> io::Result<Option<[u8; BLOCK]>> {
        loop {
            let mut block = [0u8; BLOCK];
            match self.body.input.fill(&mut block)? {
                0 => return Ok(None),
                BLOCK => {}
                _ => return Err(super::cut("a tar header")),
            }
            if block.iter().all(|&b| b == 0) || !checksum_ok(&block) {
                continue;
            }
            return Ok(Some(block));
        }
    }

    /// A metadata member's data (long name, pax records), bounded.
    fn meta(&mut self, size: u64, what: &str) -> io::Result<Vec<u8>> {
        if size > MAX_META {
            return Err(bad(format!("a tar {what} is larger than 1 MiB")));
        }
        let data = self.body.input.take_vec(size, what)?;
        self.body.input.skip(padding(size), what)?;
        Ok(data)
    }
}

impl<R: Read> Members for Tar<R> {
    fn next_member(&mut self) -> io::Result<Option<Header>> {
        self.body.finish()?;
        let pad = std::mem::take(&mut self.pad);
        self.body.input.skip(pad, "a member's padding")?;
        let mut long_name = None;
        let mut long_link = None;
        let mut pax: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut pax_bytes = 0u64;
        loop {
            let Some(block) = self.block()? else {
                return Ok(None);
            };
            let flag = block[156];
            let Some(mut size) = size_of(&block) else {
                // A header whose size cannot be read: its data cannot be
                // found either; go on with the next block.
                continue;
            };
            match flag {
                b'L' => {
                    long_name = Some(until_nul(&self.meta(size, "long name")?).to_vec());
                    continue;
                }
                b'K' => {
                    long_link = Some(until_nul(&self.meta(size, "long link name")?).to_vec());
                    continue;
                }
                b'x' => {
                    // Several in a row add up, within the same bound.
                    pax_bytes = pax_bytes.saturating_add(size);
                    if pax_bytes > MAX_META {
                        return Err(bad("the pax headers of a tar member are larger than 1 MiB"));
                    }
                    pax.extend(records(&self.meta(size, "pax header")?));
                    continue;
                }
                b'g' => {
                    let records = records(&self.meta(size, "pax global header")?);
                    for (key, value) in records {
                        if GLOBAL_KEYS.contains(&key.as_slice()) {
                            self.global.retain(|(k, _)| *k != key);
                            self.global.push((key, value));
                        }
                    }
                    continue;
                }
                _ => {}
            }
            let ustar = block.get(257..263) == Some(b"ustar\0");
            let mut name = until_nul(&block[..100]).to_vec();
            if ustar {
                let prefix = until_nul(&block[345..500]);
                if !prefix.is_empty() {
                    let mut full = prefix.to_vec();
                    full.push(b'/');
                    full.extend_from_slice(&name);
                    name = full;
                }
            }
            let mut link = until_nul(&block[157..257]).to_vec();
            let mut xattrs = Vec::new();
            let mut sparse_name = None;
            // Global records first, so that the member's own win.
            for (key, value) in self.global.iter().chain(pax.iter()) {
                match key.as_slice() {
                    b"path" => name = value.clone(),
                    b"linkpath" => link = value.clone(),
                    b"GNU.sparse.name" => sparse_name = Some(value.clone()),
                    b"size" => {
                        if let Some(n) = std::str::from_utf8(value)
                            .ok()
                            .and_then(|s| s.parse::<u64>().ok())
                        {
                            size = n;
                        }
                    }
                    _ => {
                        if let Some(attr) = key.strip_prefix(b"SCHILY.xattr.") {
                            xattrs.push((attr.to_vec(), value.clone()));
                        } else if let Some(attr) = key.strip_prefix(b"LIBARCHIVE.xattr.") {
                            // libarchive writes the name URL-encoded and the
                            // value in base64 (archive_write_set_format_pax.c);
                            // kept as stored when they do not decode.
                            xattrs.push((
                                unescape(attr).unwrap_or_else(|| attr.to_vec()),
                                base64(value).unwrap_or_else(|| value.clone()),
                            ));
                        }
                    }
                }
            }
            if let Some(n) = long_name.take() {
                name = n;
            }
            if let Some(l) = long_link.take() {
                link = l;
            }
            if let Some(n) = sparse_name {
                name = n;
            }
            if flag == b'S' && block[482] != 0 {
                // Old GNU sparse: more of the map in extension headers,
                // each flagging whether another follows (byte 504).
                loop {
                    let mut ext = [0u8; BLOCK];
                    self.body.input.exact(&mut ext, "a sparse map")?;
                    if ext[504] == 0 {
                        break;
                    }
                }
            }
            let kind = match flag {
                // Old tars mark folders by a trailing slash (GNU tar
                // extracts a regular member named so as a folder).
                b'0' | b'\0' | b'7' if name.ends_with(b"/") => EntryKind::Dir,
                b'1' => EntryKind::Hardlink,
                b'2' => EntryKind::Symlink,
                b'5' | b'D' => EntryKind::Dir,
                b'3' | b'4' | b'6' | b'V' | b'N' => EntryKind::Other,
                // '0', '\0', '7', 'S', 'M' and unknown flags: GNU tar
                // extracts them as files.
                _ => EntryKind::File,
            };
            let link = match kind {
                EntryKind::Hardlink | EntryKind::Symlink => Some(link),
                _ => None,
            };
            let mode = number(&block[100..108], 8).and_then(|m| u32::try_from(m & 0o7777).ok());
            self.body.start(Vec::new(), size);
            self.pad = padding(size);
            return Ok(Some(Header {
                name,
                kind,
                link,
                mode,
                size,
                xattrs,
            }));
        }
    }

    fn data(&mut self) -> &mut dyn Read {
        &mut self.body
    }
}

/// Whether this block (at least 512 bytes) is a tar header: ustar magic, or
/// a right checksum (v7) on a block that is not all zeros.
pub(crate) fn is_header(head: &[u8]) -> bool {
    if head.get(257..262) == Some(b"ustar") {
        return true;
    }
    let Some(block) = head.get(..BLOCK) else {
        return false;
    };
    block.iter().any(|&b| b != 0) && checksum_ok(block) && size_of(block).is_some()
}

/// The header's checksum: the byte sum with the checksum field as spaces,
/// unsigned (POSIX) or signed (some old tars).
fn checksum_ok(block: &[u8]) -> bool {
    let Some(stored) = block.get(148..156).and_then(|f| number(f, 8)) else {
        return false;
    };
    let (mut unsigned, mut signed) = (0u64, 0i64);
    for (i, &b) in block.iter().take(BLOCK).enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    stored == unsigned || i64::try_from(stored).is_ok_and(|s| s == signed)
}

/// The size field: octal, or base-256 (first byte's high bit set) for
/// sizes over 8 GiB. A negative size is unreadable.
fn size_of(block: &[u8]) -> Option<u64> {
    let field = block.get(124..136)?;
    let first = *field.first()?;
    if first & 0x80 == 0 {
        return match number(field, 8) {
            Some(n) => Some(n),
            // An empty size field is 0 for old tars.
            None if until_nul(field).iter().all(|&b| b == b' ') => Some(0),
            None => None,
        };
    }
    if first == 0xff {
        return None;
    }
    let rest = field.get(1..)?;
    rest.iter().try_fold(u64::from(first & 0x7f), |n, &b| {
        n.checked_mul(256)?.checked_add(u64::from(b))
    })
}

/// A URL-encoded name (`%xx`); `None` when malformed.
fn unescape(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.iter();
    while let Some(&b) = bytes.next() {
        if b == b'%' {
            let hi = char::from(*bytes.next()?).to_digit(16)?;
            let lo = char::from(*bytes.next()?).to_digit(16)?;
            out.push(u8::try_from(hi * 16 + lo).ok()?);
        } else {
            out.push(b);
        }
    }
    Some(out)
}

/// Standard base64, padding optional; `None` when malformed.
fn base64(text: &[u8]) -> Option<Vec<u8>> {
    let text = text
        .strip_suffix(b"==")
        .or_else(|| text.strip_suffix(b"="))
        .unwrap_or(text);
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 2);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in text {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // One character left over is not a byte.
    (bits != 6).then_some(out)
}

/// Bytes from the end of `size` bytes of data to the next block.
fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

/// pax records, `LEN KEY=VALUE\n` each; the rest is ignored after a
/// malformed one (GNU tar refuses the whole header; its raw bytes are
/// searched anyway).
fn records(mut data: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let Some(space) = data.iter().position(|&b| b == b' ') else {
            break;
        };
        let Some(len) = data
            .get(..space)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| d.parse::<usize>().ok())
        else {
            break;
        };
        let (Some(record), Some(rest)) = (data.get(..len), data.get(len..)) else {
            break;
        };
        let Some(body) = record.get(space + 1..).and_then(|r| r.strip_suffix(b"\n")) else {
            break;
        };
        let Some(eq) = body.iter().position(|&b| b == b'=') else {
            break;
        };
        out.push((
            body.get(..eq).unwrap_or_default().to_vec(),
            body.get(eq + 1..).unwrap_or_default().to_vec(),
        ));
        data = rest;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{list, scratch, sh, variants};
    use super::*;

    fn read(data: &[u8]) -> Vec<(Header, Vec<u8>)> {
        let (members, err) = list(&mut Tar::new(data), 10_000);
        assert!(err.is_none(), "{err:?}");
        members
    }

    /// One hand-made header block (ustar or GNU magic), checksum set.
    fn header(name: &str, flag: u8, size: u64, magic: &[u8; 8]) -> [u8; 512] {
        let mut b = [0u8; 512];
        b[..name.len()].copy_from_slice(name.as_bytes());
        b[100..108].copy_from_slice(b"0000644\0");
        b[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
        b[156] = flag;
        b[257..265].copy_from_slice(magic);
        let sum: u32 = b.iter().map(|&x| u32::from(x)).sum::<u32>() + 8 * 32;
        b[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        b
    }

    /// Sets the checksum of the header block `b` starts with, after a
    /// byte of it changed.
    fn set_checksum(b: &mut [u8]) {
        let sum: u32 = b[..512]
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u32::from(x)
                }
            })
            .sum();
        b[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    }

    fn member(name: &str, flag: u8, data: &[u8]) -> Vec<u8> {
        let mut out = header(name, flag, data.len() as u64, b"ustar\x0000").to_vec();
        out.extend_from_slice(data);
        out.resize(out.len() + padding(data.len() as u64) as usize, 0);
        out
    }

    fn pax(records: &[(&str, &str)]) -> Vec<u8> {
        let mut text = Vec::new();
        for (k, v) in records {
            let body = format!(" {k}={v}\n");
            let mut len = body.len() + 1;
            while format!("{len}").len() + body.len() != len {
                len += 1;
            }
            text.extend_from_slice(format!("{len}{body}").as_bytes());
        }
        member("PaxHeader", b'x', &text)
    }

    fn names(members: &[(Header, Vec<u8>)]) -> Vec<String> {
        members
            .iter()
            .map(|(h, _)| super::super::normalise(&h.name))
            .collect()
    }

    #[test]
    fn tars_made_by_gnu_tar_in_every_format_are_read() {
        let dir = scratch("tar-formats");
        sh(
            &dir,
            "mkdir -p t/d && printf 'hello secret' > t/d/f.txt && ln -s d/f.txt t/link \
             && ln t/d/f.txt t/hard && mkfifo t/fifo \
             && long=$(printf 'n%.0s' $(seq 1 150)) && printf 'long' > t/d/$long",
        );
        let long = format!("t/d/{}", "n".repeat(150));
        for format in ["gnu", "pax", "ustar", "v7", "oldgnu", "posix"] {
            if format == "v7" || format == "ustar" {
                // v7 and ustar cannot hold the 150-byte name.
                sh(&dir, &format!("tar --sort=name --format={format} -cf {format}.tar --exclude='nnnn*' t 2>/dev/null; true"));
            } else {
                sh(
                    &dir,
                    &format!("tar --sort=name --format={format} -cf {format}.tar t"),
                );
            }
            let members = read(&std::fs::read(dir.join(format!("{format}.tar"))).unwrap());
            let find = |n: &str| {
                members
                    .iter()
                    .find(|(h, _)| super::super::normalise(&h.name) == n)
                    .unwrap_or_else(|| panic!("{format}: no {n} in {:?}", names(&members)))
            };
            let (f, data) = find("t/d/f.txt");
            assert_eq!(
                (f.kind.clone(), f.size, data.as_slice()),
                (EntryKind::File, 12, &b"hello secret"[..])
            );
            assert_eq!(f.mode.map(|m| m & 0o777), Some(0o644), "{format}");
            let (l, _) = find("t/link");
            assert_eq!(
                (l.kind.clone(), l.link.as_deref()),
                (EntryKind::Symlink, Some(&b"d/f.txt"[..]))
            );
            let (h, _) = find("t/hard");
            assert_eq!(h.kind, EntryKind::Hardlink, "{format}");
            assert_eq!(find("t/d").0.kind, EntryKind::Dir, "{format}");
            if format != "v7" {
                assert_eq!(find("t/fifo").0.kind, EntryKind::Other, "{format}");
            }
            if format != "v7" && format != "ustar" {
                assert_eq!(find(&long).1, b"long");
            }
        }
    }

    #[test]
    fn sparse_files_hand_out_their_stored_data() {
        let dir = scratch("tar-sparse");
        // Holes between data: the old GNU map has more than 4 entries (an
        // extension header), the pax 1.0 format keeps the map in the data.
        let mut script = String::from("truncate -s 8M s && ");
        for i in 0..8 {
            script += &format!(
                "printf 'part{i}' | dd of=s bs=1 seek={} conv=notrunc 2>/dev/null && ",
                i * 1_000_000
            );
        }
        script += "tar -S --format=gnu -cf gnu.tar s && tar -S --format=pax -cf pax.tar s";
        sh(&dir, &script);
        let gnu = read(&std::fs::read(dir.join("gnu.tar")).unwrap());
        assert_eq!(names(&gnu), ["s"]);
        let (h, data) = &gnu[0];
        assert_eq!(h.kind, EntryKind::File);
        assert_eq!(h.size, data.len() as u64);
        assert!(h.size <= 8 * 4096, "holes are not stored: {}", h.size);
        let text = String::from_utf8_lossy(data);
        for i in 0..8 {
            assert!(text.contains(&format!("part{i}")), "{i}");
        }
        let pax = read(&std::fs::read(dir.join("pax.tar")).unwrap());
        assert_eq!(names(&pax), ["s"], "GNU.sparse.name gives the real name");
        assert!(String::from_utf8_lossy(&pax[0].1).contains("part7"));
    }

    #[test]
    fn data_after_the_end_marker_and_after_a_leading_zero_block_is_read() {
        let mut data = vec![0u8; 512];
        data.extend(member("a", b'0', b"one"));
        data.extend([0u8; 1024]);
        data.extend(member("b", b'0', b"two"));
        data.extend([0u8; 10240]);
        let members = read(&data);
        assert_eq!(names(&members), ["a", "b"]);
        assert_eq!(members[1].1, b"two");
        // The same with GNU tar's own output.
        let dir = scratch("tar-eof");
        sh(&dir, "printf one > a && printf two > b && tar -cf 1.tar a && tar -cf 2.tar b && cat 1.tar 2.tar > both.tar");
        let members = read(&std::fs::read(dir.join("both.tar")).unwrap());
        assert_eq!(names(&members), ["a", "b"]);
    }

    #[test]
    fn a_pax_size_overrides_the_header_size() {
        let mut data = pax(&[
            ("size", "700"),
            ("path", "real/name"),
            ("SCHILY.xattr.user.a", "plain"),
            ("LIBARCHIVE.xattr.user.%78", "c2VjcmV0"),
            ("LIBARCHIVE.xattr.user.raw", "v"),
        ]);
        let body = vec![b's'; 700];
        let mut h = header("short", b'0', 0, b"ustar\x0000").to_vec();
        h.extend(&body);
        h.resize(h.len() + padding(700) as usize, 0);
        data.extend(h);
        data.extend(member("next", b'0', b"n"));
        let members = read(&data);
        assert_eq!(names(&members), ["real/name", "next"]);
        assert_eq!((members[0].0.size, members[0].1.len()), (700, 700));
        assert_eq!(
            members[0].0.xattrs,
            vec![
                (b"user.a".to_vec(), b"plain".to_vec()),
                (b"user.x".to_vec(), b"secret".to_vec()),
                (b"user.raw".to_vec(), b"v".to_vec()),
            ]
        );
        // A global header applies to what follows.
        let mut data = pax(&[("linkpath", "x")]);
        data[156] = b'g';
        set_checksum(&mut data);
        data.extend(member("l", b'2', b""));
        assert_eq!(read(&data)[0].0.link.as_deref(), Some(&b"x"[..]));
    }

    #[test]
    fn contiguous_sparse_and_unknown_types_are_files_with_their_data() {
        let mut data = member("seven", b'7', b"contiguous");
        let mut sparse = header("sparse", b'S', 6, b"ustar  \0");
        sparse[482] = 1; // one extension header follows
        set_checksum(&mut sparse);
        data.extend(sparse);
        data.extend([0u8; 512]); // the extension header, last one
        data.extend(b"stored");
        data.resize(data.len() + 506, 0);
        data.extend(member("queer", b'Q', b"unknown"));
        data.extend(member("olddir/", b'\0', b""));
        let mut members = read(&data);
        assert_eq!(names(&members), ["seven", "sparse", "queer", "olddir"]);
        assert_eq!(members.pop().unwrap().0.kind, EntryKind::Dir);
        for ((h, d), want) in members
            .iter()
            .zip([&b"contiguous"[..], b"stored", b"unknown"])
        {
            assert_eq!((h.kind.clone(), d.as_slice()), (EntryKind::File, want));
        }
    }

    #[test]
    fn bad_checksums_are_skipped_and_base256_sizes_read() {
        let mut data = member("a", b'0', b"one");
        data[148] = b'7';
        data.extend(member("b", b'0', b"two"));
        assert_eq!(names(&read(&data)), ["b"]);
        let mut h = header("big", b'0', 0, b"ustar\x0000");
        h[124..136].copy_from_slice(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x00]);
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|&x| u32::from(x)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        let mut data = h.to_vec();
        data.extend(vec![b'x'; 512]);
        let members = read(&data);
        assert_eq!((members[0].0.size, members[0].1.len()), (512, 512));
    }

    #[test]
    fn huge_metadata_and_truncated_data_are_errors() {
        let data = header("././@LongLink", b'L', 2 << 20, b"ustar  \0");
        let (_, err) = list(&mut Tar::new(&data[..]), 10);
        assert!(err.unwrap().to_string().contains("larger than 1 MiB"));
        // pax headers in a row add up.
        let record = format!("{} comment={}\n", 600_008, "c".repeat(600_008 - 16));
        assert_eq!(records(record.as_bytes()).len(), 1);
        let mut data = member("PaxHeader", b'x', record.as_bytes());
        data.extend(data.clone());
        data.extend(member("a", b'0', b"a"));
        let (_, err) = list(&mut Tar::new(&data[..]), 10);
        assert!(err
            .unwrap()
            .to_string()
            .contains("pax headers of a tar member"));
        // A size of 8 EiB with 3 bytes of data: an error, nothing held.
        let mut h = header("huge", b'0', 0, b"ustar\x0000");
        h[124..136].copy_from_slice(&[
            0x80, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ]);
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|&x| u32::from(x)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        let mut data = h.to_vec();
        data.extend(b"abc");
        let (members, err) = list(&mut Tar::new(&data[..]), 10);
        assert!(members.is_empty());
        assert_eq!(err.unwrap().kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn libarchive_xattrs_are_decoded() {
        for (text, want) in [
            (&b"c2VjcmV0"[..], Some(&b"secret"[..])),
            (b"YQ==", Some(b"a")),
            (b"YWI=", Some(b"ab")),
            (b"", Some(b"")),
            (b"a b", None),
            (b"YWJjZ", None),
        ] {
            assert_eq!(base64(text).as_deref(), want);
        }
        assert_eq!(unescape(b"user.%41%3d").as_deref(), Some(&b"user.A="[..]));
        assert_eq!(unescape(b"%4"), None);
        assert_eq!(unescape(b"%zz"), None);
    }

    #[test]
    fn hostile_variants_end_in_ok_or_err() {
        let mut good = pax(&[("path", "p"), ("SCHILY.xattr.user.a", "b")]);
        good.extend(member("a", b'0', b"one"));
        good.extend(member("././@LongLink", b'L', b"long/name"));
        good.extend(member("x", b'S', b"sparse"));
        good.extend(member("y", b'2', b""));
        for (i, v) in variants(&good, 17, 600).iter().enumerate() {
            let (members, _) = list(&mut Tar::new(&v[..]), 10_000);
            assert!(members.len() <= v.len() / 512, "variant {i}");
        }
        // The records parser on its own.
        for v in variants(b"10 path=a\n12 size=123\n", 3, 300) {
            records(&v);
        }
    }
}
