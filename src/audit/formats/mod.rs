//! Container readers for the audit: they list the members of a tar, cpio,
//! ar, rpm or zip and hand out each member's data, and nothing else (no
//! decompression: `decode` owns that, `scan` decides what to do with a
//! member).
//!
//! Every input is hostile. The readers allocate only what they have read
//! (never a declared size up front beyond a small cap), bound every name
//! and table they hold, and never panic; a damaged stream ends in `Err`.
//! Each stream reader consumes at least one header's worth of input per
//! member, so the work is bounded by the input's size.
//!
//! - [`tar`]: ustar, GNU, pax, v7; read on past the end-of-archive marker
//!   like `tar -i`.
//! - [`cpio`]: newc, crc, odc, binary; archives back to back.
//! - [`ar`]: GNU and BSD long names (.deb, .ipk).
//! - [`rpm`]: the lead and headers, up to the compressed cpio payload.
//! - [`zip`]: from memory, found by its end record as unzip finds it.

// Until `scan` reads through these readers (the lead's branch): remove
// this then, so that what stays unused is said.

pub(crate) mod ar;
pub(crate) mod cpio;
pub(crate) mod rpm;
pub(crate) mod tar;
pub(crate) mod zip;

use std::io::{self, Read};

pub(crate) use self::ar::Ar;
pub(crate) use self::cpio::Cpio;
pub(crate) use self::tar::Tar;

/// What a member is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Hardlink,
    /// Devices, fifos, sockets, volume labels.
    Other,
}

/// A member as its headers describe it.
#[derive(Debug, Clone)]
pub struct Header {
    /// Raw bytes as stored (after long-name/pax resolution).
    pub name: Vec<u8>,
    pub kind: EntryKind,
    /// Symlink/hardlink target.
    pub link: Option<Vec<u8>>,
    pub mode: Option<u32>,
    /// Bytes of data this member has in the stream (what `data()` yields).
    pub size: u64,
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// A container read as a stream, member by member (tar, cpio, ar, rpm's
/// cpio payload).
pub trait Members {
    /// The next member; skips (reads through) what is left of the previous
    /// one's data.
    fn next_member(&mut self) -> io::Result<Option<Header>>;
    /// The current member's data, at most `Header::size` bytes. A stream
    /// that ends before them is an `UnexpectedEof` error.
    fn data(&mut self) -> &mut dyn Read;
}

/// The container formats these readers know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Tar,
    Cpio,
    Ar,
    Rpm,
    Zip,
}

impl Format {
    /// The format's short name, as `sniff`'s documentation spells it.
    pub fn name(self) -> &'static str {
        match self {
            Format::Tar => "tar",
            Format::Cpio => "cpio",
            Format::Ar => "ar",
            Format::Rpm => "rpm",
            Format::Zip => "zip",
        }
    }
}

/// Which container format these first bytes start (head up to 512 bytes):
/// tar ("ustar" at 257, or a v7 header whose checksum is right), cpio
/// (`07070[127]`, binary `c7 71` either way round), ar, rpm, zip (`PK\3\4`
/// or `PK\5\6` at 0; a zip further in is found by [`zip::find`]).
pub fn sniff(head: &[u8]) -> Option<Format> {
    if head.starts_with(b"\xed\xab\xee\xdb") {
        Some(Format::Rpm)
    } else if head.starts_with(ar::MAGIC) {
        Some(Format::Ar)
    } else if cpio::is_magic(head) {
        Some(Format::Cpio)
    } else if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        Some(Format::Zip)
    } else if tar::is_header(head) {
        Some(Format::Tar)
    } else {
        None
    }
}

/// A member/path name made fit for reports: lossy UTF-8, `/`-separated, no
/// leading `/` or `./`, `//` and `/./` collapsed, no trailing `/`.
pub fn normalise(raw: &[u8]) -> String {
    let name = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(name.len());
    for part in name.split('/').filter(|p| !p.is_empty() && *p != ".") {
        if !out.is_empty() {
            out.push('/');
        }
        out.push_str(part);
    }
    out
}

/// The input of a stream reader, with bytes read ahead that can be put
/// back (cpio peeks past its trailer).
#[derive(Debug)]
pub(crate) struct Input<R> {
    inner: R,
    ahead: Vec<u8>,
    at: usize,
}

impl<R: Read> Input<R> {
    pub(crate) fn new(inner: R) -> Self {
        Input {
            inner,
            ahead: Vec::new(),
            at: 0,
        }
    }

    /// Fills `buf` as far as the input goes; the count read.
    pub(crate) fn fill(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut got = 0;
        while let Some(rest) = buf.get_mut(got..) {
            if rest.is_empty() {
                break;
            }
            match self.read(rest) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(got)
    }

    /// Fills `buf` whole, or fails saying what was cut short.
    pub(crate) fn exact(&mut self, buf: &mut [u8], what: &str) -> io::Result<()> {
        if self.fill(buf)? == buf.len() {
            Ok(())
        } else {
            Err(cut(what))
        }
    }

    /// Reads `n` bytes (`n` bounded by the caller) into a new vector,
    /// growing it only as bytes arrive.
    pub(crate) fn take_vec(&mut self, n: u64, what: &str) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.by_ref().take(n).read_to_end(&mut out)?;
        if out.len() as u64 == n {
            Ok(out)
        } else {
            Err(cut(what))
        }
    }

    /// Reads through `n` bytes, or fails saying what was cut short.
    pub(crate) fn skip(&mut self, n: u64, what: &str) -> io::Result<()> {
        if io::copy(&mut self.by_ref().take(n), &mut io::sink())? == n {
            Ok(())
        } else {
            Err(cut(what))
        }
    }

    /// Puts bytes back in front of what is left to read.
    pub(crate) fn unread(&mut self, bytes: &[u8]) {
        let rest = self.ahead.get(self.at..).unwrap_or_default();
        let mut ahead = Vec::with_capacity(bytes.len() + rest.len());
        ahead.extend_from_slice(bytes);
        ahead.extend_from_slice(rest);
        self.ahead = ahead;
        self.at = 0;
    }
}

impl<R: Read> Read for Input<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(rest) = self.ahead.get(self.at..).filter(|r| !r.is_empty()) {
            let n = rest.len().min(buf.len());
            if let (Some(dst), Some(src)) = (buf.get_mut(..n), rest.get(..n)) {
                dst.copy_from_slice(src);
            }
            self.at += n;
            if self.at >= self.ahead.len() {
                self.ahead = Vec::new();
                self.at = 0;
            }
            return Ok(n);
        }
        self.inner.read(buf)
    }
}

/// A member's data: bytes already read (a BSD ar name's remainder, a cpio
/// symlink target) then the rest from the input, `left` bytes of it.
#[derive(Debug)]
pub(crate) struct Body<R> {
    pub(crate) input: Input<R>,
    held: Vec<u8>,
    held_at: usize,
    left: u64,
}

impl<R: Read> Body<R> {
    pub(crate) fn new(inner: R) -> Self {
        Body {
            input: Input::new(inner),
            held: Vec::new(),
            held_at: 0,
            left: 0,
        }
    }

    /// Starts a member whose data is `held` then `left` bytes of input.
    pub(crate) fn start(&mut self, held: Vec<u8>, left: u64) {
        self.held = held;
        self.held_at = 0;
        self.left = left;
    }

    /// Reads through what is left of the member's data.
    pub(crate) fn finish(&mut self) -> io::Result<()> {
        self.held = Vec::new();
        self.held_at = 0;
        let left = std::mem::take(&mut self.left);
        self.input.skip(left, "a member's data")
    }
}

impl<R: Read> Read for Body<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(rest) = self.held.get(self.held_at..).filter(|r| !r.is_empty()) {
            let n = rest.len().min(buf.len());
            if let (Some(dst), Some(src)) = (buf.get_mut(..n), rest.get(..n)) {
                dst.copy_from_slice(src);
            }
            self.held_at += n;
            return Ok(n);
        }
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let n = usize::try_from(self.left).map_or(buf.len(), |left| left.min(buf.len()));
        let got = self.input.read(buf.get_mut(..n).unwrap_or_default())?;
        if got == 0 {
            return Err(cut("a member's data"));
        }
        self.left -= got as u64;
        Ok(got)
    }
}

/// The error for a stream that ends inside `what`.
pub(crate) fn cut(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("the archive ends inside {what}"),
    )
}

/// The error for a malformed archive.
pub(crate) fn bad(why: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.into())
}

/// The bytes before the first NUL.
pub(crate) fn until_nul(bytes: &[u8]) -> &[u8] {
    match bytes.iter().position(|&b| b == 0) {
        Some(at) => bytes.get(..at).unwrap_or_default(),
        None => bytes,
    }
}

/// A number written in `radix` digits, padded with spaces or NULs on
/// either side; `None` for anything else or an overflow.
pub(crate) fn number(field: &[u8], radix: u32) -> Option<u64> {
    let text = until_nul(field);
    let start = text.iter().position(|&b| b != b' ')?;
    let digits = text.get(start..)?;
    let end = digits
        .iter()
        .position(|&b| b == b' ')
        .unwrap_or(digits.len());
    let (digits, pad) = (digits.get(..end)?, digits.get(end..)?);
    if digits.is_empty() || pad.iter().any(|&b| b != b' ') {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        let d = char::from(b).to_digit(radix)?;
        n.checked_mul(u64::from(radix))?.checked_add(u64::from(d))
    })
}

/// Deterministic noise and a member lister for the readers' tests.
#[cfg(test)]
pub(crate) mod testkit {
    use super::*;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    /// xorshift64*: seeded, so a failing hostile variant can be replayed.
    #[derive(Debug)]
    pub struct Rng(pub u64);

    impl Rng {
        pub fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        pub fn below(&mut self, n: usize) -> usize {
            (self.next() % (n.max(1) as u64)) as usize
        }
    }

    /// Hostile variants of a good archive: truncations, flipped bytes,
    /// runs of 0xff/'7'/'0' (huge sizes and name sizes), spliced copies
    /// (loops) and random bytes.
    pub fn variants(good: &[u8], seed: u64, count: usize) -> Vec<Vec<u8>> {
        let mut rng = Rng(seed | 1);
        let mut out = Vec::new();
        for i in 0..count {
            let mut v = good.to_vec();
            match i % 6 {
                0 => v.truncate(rng.below(good.len())),
                1 => {
                    for _ in 0..1 + rng.below(8) {
                        let at = rng.below(v.len());
                        v[at] = rng.next() as u8;
                    }
                }
                2 => {
                    let at = rng.below(v.len());
                    let fill = [0xff, b'7', b'0', b'9', b'f', 0][rng.below(6)];
                    let end = (at + 1 + rng.below(16)).min(v.len());
                    v[at..end].iter_mut().for_each(|b| *b = fill);
                }
                3 => {
                    let at = rng.below(v.len());
                    let from = rng.below(v.len());
                    let piece = v[from..].to_vec();
                    v.truncate(at);
                    v.extend_from_slice(&piece);
                }
                4 => {
                    let keep = rng.below(v.len().min(200));
                    v.truncate(keep);
                    v.extend((0..rng.below(4096)).map(|_| rng.next() as u8));
                }
                _ => {
                    let at = rng.below(v.len());
                    let len = (rng.below(64)).min(v.len() - at);
                    for b in &mut v[at..at + len] {
                        *b = rng.next() as u8;
                    }
                }
            }
            out.push(v);
        }
        out
    }

    /// Every member's header and data; stops at the first error, with at
    /// most `cap` members (a reader that makes no progress fails the test).
    pub fn list(
        members: &mut dyn Members,
        cap: usize,
    ) -> (Vec<(Header, Vec<u8>)>, Option<io::Error>) {
        let mut out = Vec::new();
        for _ in 0..cap {
            match members.next_member() {
                Ok(Some(h)) => {
                    let mut data = Vec::new();
                    if let Err(e) = members.data().take(h.size + 1).read_to_end(&mut data) {
                        return (out, Some(e));
                    }
                    assert!(
                        data.len() as u64 <= h.size,
                        "data() gave more than the size"
                    );
                    out.push((h, data));
                }
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e)),
            }
        }
        panic!("more than {cap} members: the reader makes no progress");
    }

    /// A scratch folder for files the real tools make, removed when
    /// dropped.
    #[derive(Debug)]
    pub struct Scratch(PathBuf);

    impl std::ops::Deref for Scratch {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    pub fn scratch(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("sota-formats-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// Runs a shell command in `dir`, panicking with its stderr on failure.
    pub fn sh(dir: &Path, script: &str) {
        let out = Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "`{script}` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised_for_reports() {
        for (raw, want) in [
            (&b"./usr//lib/./x/"[..], "usr/lib/x"),
            (b"/etc/sota", "etc/sota"),
            (b".//./a", "a"),
            (b"a/../b", "a/../b"),
            (b".", ""),
            (b"\xffx", "\u{fffd}x"),
        ] {
            assert_eq!(normalise(raw), want);
        }
    }

    #[test]
    fn numbers_take_padding_on_either_side_and_nothing_else() {
        assert_eq!(number(b"  0644 \0", 8), Some(0o644));
        assert_eq!(number(b"0000001\0\0\0", 8), Some(1));
        assert_eq!(number(b"18", 8), None);
        assert_eq!(number(b"1 2", 8), None);
        assert_eq!(number(b"    ", 8), None);
        assert_eq!(number(b"ffffffffffffffffff", 16), None);
        assert_eq!(number(b"0000ABcd", 16), Some(0xabcd));
    }

    #[test]
    fn first_bytes_tell_the_format() {
        let mut v7 = [0u8; 512];
        v7[..3].copy_from_slice(b"abc");
        v7[100..108].copy_from_slice(b"0000644\0");
        v7[124..136].copy_from_slice(b"00000000000\0");
        let sum: u32 = v7.iter().map(|&b| u32::from(b)).sum::<u32>() + 8 * u32::from(b' ');
        v7[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        let mut ustar = [0u8; 512];
        ustar[257..263].copy_from_slice(b"ustar\0");
        for (head, want) in [
            (&b"\xed\xab\xee\xdb\x03\x00"[..], Some(Format::Rpm)),
            (b"!<arch>\nx", Some(Format::Ar)),
            (b"070701000", Some(Format::Cpio)),
            (b"070707000", Some(Format::Cpio)),
            (b"\xc7\x71\x00", Some(Format::Cpio)),
            (b"\x71\xc7\x00", Some(Format::Cpio)),
            (b"PK\x03\x04", Some(Format::Zip)),
            (b"PK\x05\x06", Some(Format::Zip)),
            (&ustar[..], Some(Format::Tar)),
            (&v7[..], Some(Format::Tar)),
            (&[0u8; 512][..], None),
            (b"#!/bin/sh\n", None),
        ] {
            assert_eq!(sniff(head), want, "{:?}", &head[..head.len().min(8)]);
        }
        v7[0] = b'x';
        assert_eq!(sniff(&v7), None, "a v7 header with a wrong checksum");
    }
}
