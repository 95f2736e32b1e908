//! Streaming, bounded decoders for the compression formats an image holds:
//! gzip, zlib and raw deflate (`deflate.rs`, on `miniz_oxide`), bzip2
//! (`bzip2.rs`, on `bzip2-rs`), xz and `.lzma` (by hand: `xz.rs` the
//! container, `lzma.rs` LZMA and LZMA2), lz4 frames and the legacy format
//! (`lz4.rs`, on `lz4_flex`), zstd (`zstd.rs`, on `ruzstd`); `input.rs`
//! is what they share (the buffered input, the errors, the memory check).
//!
//! Each [`Decoder`] reads from any `Read` and is itself a `Read`, so they
//! stack (a `.tar.xz` inside a `.deb` inside a `.tar.gz`). What one holds is
//! bounded by its stream's dictionary or window, never by how much data a
//! block or frame carries: the header of every stream, block or frame is
//! read before its decoder is made, and one asking for more than the
//! caller's `mem_limit` (or a dictionary or window over 64 MiB) is
//! [`Refused`], not decoded. [`Decoder::memory`] says what it holds, from
//! those headers and the fixed buffers, for the caller's shared budget.
//!
//! Every format is read to its end: all gzip members, bzip2 streams (pbzip2
//! writes one per 900 kB), xz streams, lz4 and zstd frames (skippable
//! frames skipped). Checksums are not checked where we read the data
//! ourselves (gzip, zlib, xz): the content is searched, not trusted, and a
//! bad checksum must not hide it. Bytes after the last stream that do not
//! start another one are left unread, as `gzip -d` and `bzip2 -d` do: the
//! caller searches a file's raw bytes anyway.
//!
//! Errors are `io::Error`s of kind `InvalidData` whose message names the
//! format and what is wrong ("xz: corrupt block header"), never bytes of
//! the input; an error of the reader below is passed up unchanged, so a
//! [`Refused`] from a nested decoder stays one ([`refused`] finds it).
//! After an error, every later read returns it again.

mod bzip2;
mod deflate;
mod input;
mod lz4;
mod lzma;
mod xz;
mod zstd;

use std::fmt;
use std::io::{self, Read};

pub use input::{refused, Refused};
use input::{Failure, Input, INPUT_BUF};

/// A compression format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Gzip,
    Zlib,
    /// Raw deflate (zip members, OSTree `.filez`): no magic, never sniffed.
    Deflate,
    Bzip2,
    Xz,
    /// The `.lzma` ("LZMA alone") format.
    Lzma,
    /// lz4 frames and the legacy format (`lz4 -l`, which OE writes).
    Lz4,
    Zstd,
}

impl Codec {
    pub fn name(self) -> &'static str {
        match self {
            Codec::Gzip => "gzip",
            Codec::Zlib => "zlib",
            Codec::Deflate => "deflate",
            Codec::Bzip2 => "bzip2",
            Codec::Xz => "xz",
            Codec::Lzma => "lzma",
            Codec::Lz4 => "lz4",
            Codec::Zstd => "zstd",
        }
    }
}

/// The format told by the first bytes of a stream (pass up to 512).
/// zlib's magic is two bytes (`78 01`, `78 5e`, `78 9c`, `78 da`, with the
/// header checksum): only when `allow_zlib`, which the caller gives for a
/// whole file, never for a place inside one. `.lzma` has no magic: it is
/// told by the same header checks as xz-utils' own (a valid properties
/// byte with lc + lp <= 4, a dictionary of 2^n or 2^n + 2^(n-1) bytes, a
/// size that is unknown or under 256 GiB).
pub fn sniff(head: &[u8], allow_zlib: bool) -> Option<Codec> {
    const XZ: &[u8] = b"\xfd7zXZ\x00";
    if head.starts_with(&[0x1f, 0x8b, 8]) {
        return Some(Codec::Gzip);
    }
    if head.starts_with(XZ) {
        return Some(Codec::Xz);
    }
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Some(Codec::Zstd);
    }
    if head.starts_with(&[0x04, 0x22, 0x4d, 0x18]) || head.starts_with(&[0x02, 0x21, 0x4c, 0x18]) {
        return Some(Codec::Lz4);
    }
    if bzip2::sniff(head) {
        return Some(Codec::Bzip2);
    }
    if allow_zlib && deflate::zlib_header(head) == Some(false) {
        return Some(Codec::Zlib);
    }
    if xz::lzma_header(head).is_some() {
        return Some(Codec::Lzma);
    }
    None
}

/// Opens a decoder of `codec` over `input`, holding at most `mem_limit`
/// bytes (its dictionary, window or blocks and its buffers). `Err` when the
/// stream's first header asks for more, or for what is not supported;
/// damaged data is an error of the first read.
pub fn open<'a>(
    codec: Codec,
    input: Box<dyn Read + 'a>,
    mem_limit: u64,
) -> Result<Decoder<'a>, Refused> {
    let input = Input::new(input);
    let inner = match codec {
        Codec::Gzip => deflate::Inflate::new(input, deflate::Wrap::Gzip, mem_limit)
            .map(|d| Inner::Inflate(Box::new(d))),
        Codec::Zlib => deflate::Inflate::new(input, deflate::Wrap::Zlib, mem_limit)
            .map(|d| Inner::Inflate(Box::new(d))),
        Codec::Deflate => deflate::Inflate::new(input, deflate::Wrap::Raw, mem_limit)
            .map(|d| Inner::Inflate(Box::new(d))),
        Codec::Bzip2 => bzip2::Bzip2::new(input, mem_limit).map(|d| Inner::Bzip2(Box::new(d))),
        Codec::Xz => xz::Xz::new(input, mem_limit).map(|d| Inner::Xz(Box::new(d))),
        Codec::Lzma => xz::Lzma::new(input, mem_limit).map(|d| Inner::Lzma(Box::new(d))),
        Codec::Lz4 => lz4::Lz4::new(input, mem_limit).map(|d| Inner::Lz4(Box::new(d))),
        Codec::Zstd => zstd::Zstd::new(input, mem_limit).map(|d| Inner::Zstd(Box::new(d))),
    };
    match inner {
        Ok(inner) => Ok(Decoder {
            codec,
            inner,
            memory: 0,
            failed: None,
        }),
        Err(e) => match refused(&e) {
            Some(r) => Err(r.clone()),
            None => Ok(Decoder {
                codec,
                inner: Inner::Failed,
                memory: INPUT_BUF as u64,
                failed: Some(Failure::from(&e)),
            }),
        },
    }
}

/// A decoder of one codec: `Read` gives the decompressed content.
pub struct Decoder<'a> {
    codec: Codec,
    inner: Inner<'a>,
    /// The most held before `inner` failed.
    memory: u64,
    failed: Option<Failure>,
}

enum Inner<'a> {
    Inflate(Box<deflate::Inflate<'a>>),
    Bzip2(Box<bzip2::Bzip2<'a>>),
    Xz(Box<xz::Xz<'a>>),
    Lzma(Box<xz::Lzma<'a>>),
    Lz4(Box<lz4::Lz4<'a>>),
    Zstd(Box<zstd::Zstd<'a>>),
    Failed,
}

impl Decoder<'_> {
    /// The most memory (bytes) this decoder has held so far: its
    /// dictionary, window or block buffers, sized from the headers read,
    /// and its fixed buffers.
    pub fn memory(&self) -> u64 {
        let now = match &self.inner {
            Inner::Inflate(d) => d.memory(),
            Inner::Bzip2(d) => d.memory(),
            Inner::Xz(d) => d.memory(),
            Inner::Lzma(d) => d.memory(),
            Inner::Lz4(d) => d.memory(),
            Inner::Zstd(d) => d.memory(),
            Inner::Failed => 0,
        };
        now.max(self.memory)
    }

    #[allow(dead_code)] // the tests' check of what was opened
    pub fn codec(&self) -> Codec {
        self.codec
    }
}

impl fmt::Debug for Decoder<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoder")
            .field("codec", &self.codec)
            .field("memory", &self.memory())
            .field("failed", &self.failed.is_some())
            .finish_non_exhaustive()
    }
}

impl Read for Decoder<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(f) = &self.failed {
            return Err(f.error());
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let result = match &mut self.inner {
            Inner::Inflate(d) => d.read(buf),
            Inner::Bzip2(d) => d.read(buf),
            Inner::Xz(d) => d.read(buf),
            Inner::Lzma(d) => d.read(buf),
            Inner::Lz4(d) => d.read(buf),
            Inner::Zstd(d) => d.read(buf),
            Inner::Failed => Ok(0),
        };
        result.map_err(|e| {
            // Frees the decoder's buffers; its error is kept.
            self.memory = self.memory();
            self.inner = Inner::Failed;
            let failure = Failure::from(&e);
            self.failed = Some(failure);
            e
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Write;
    use std::process::{Command, Stdio};

    use super::*;

    /// Runs a Debian command with `input` on stdin; its stdout. Panics
    /// (loudly) when the command is missing or fails.
    pub fn tool(program: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("`{program}` is needed by this test and cannot be run ({e}); install it (Debian: xz-utils, bzip2, pbzip2, lz4, zstd, gzip)")
            });
        let mut stdin = child.stdin.take().unwrap();
        let data = input.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        assert!(
            out.status.success(),
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Some text that compresses, different for each `seed`.
    pub fn sample(seed: u64, len: usize) -> Vec<u8> {
        let mut rng = Rng(seed | 1);
        let words: [&[u8]; 6] = [
            b"treehub ",
            b"secret ",
            b"image ",
            b"rootfs\n",
            b"0123 ",
            b"ab ",
        ];
        let mut out = Vec::with_capacity(len + 16);
        while out.len() < len {
            if rng.next() % 7 == 0 {
                out.push(rng.next() as u8);
            } else {
                out.extend_from_slice(words[(rng.next() % 6) as usize]);
            }
        }
        out.truncate(len);
        out
    }

    pub use crate::audit::formats::testkit::Rng;

    /// Decodes all of `data`, at most `cap` bytes out.
    pub fn decode(codec: Codec, data: &[u8], limit: u64) -> io::Result<Vec<u8>> {
        let mut d = open(codec, Box::new(data), limit).map_err(|r| r.into_io())?;
        let mut out = Vec::new();
        d.read_to_end(&mut out)?;
        Ok(out)
    }

    /// The error decoding `data` ends in (the content's size, not the
    /// content, when it does not).
    pub fn decode_err(codec: Codec, data: &[u8], limit: u64) -> io::Error {
        match decode(codec, data, limit) {
            Ok(out) => panic!("{codec:?}: decoded {} bytes, no error", out.len()),
            Err(e) => e,
        }
    }

    /// Feeds a few hundred damaged forms of `valid` (truncated, bytes
    /// changed, random tails after its first bytes, random bytes): each
    /// must end in `Ok` or `Err`, never a panic or a hang.
    pub fn hostile(codec: Codec, valid: &[u8], seed: u64) {
        let mut rng = Rng(seed | 1);
        let mut cases: Vec<Vec<u8>> = Vec::new();
        for _ in 0..100 {
            let cut = (rng.next() as usize) % (valid.len() + 1);
            cases.push(valid[..cut].to_vec());
        }
        for _ in 0..200 {
            let mut bad = valid.to_vec();
            for _ in 0..=(rng.next() % 8) {
                let at = (rng.next() as usize) % bad.len().max(1);
                if let Some(b) = bad.get_mut(at) {
                    *b = match rng.next() % 3 {
                        0 => *b ^ (1 << (rng.next() % 8)),
                        1 => rng.next() as u8,
                        _ => 0xff,
                    };
                }
            }
            cases.push(bad);
        }
        for _ in 0..50 {
            let keep = (rng.next() as usize) % valid.len().clamp(1, 24);
            let mut bad = valid[..keep].to_vec();
            let tail = (rng.next() % 600) as usize;
            bad.extend((0..tail).map(|_| rng.next() as u8));
            cases.push(bad);
        }
        for _ in 0..20 {
            let len = (rng.next() % 300) as usize;
            cases.push((0..len).map(|_| rng.next() as u8).collect());
        }
        for case in &cases {
            let Ok(mut d) = open(codec, Box::new(&case[..]), 64 << 20) else {
                continue;
            };
            // A bomb is stopped by the caller's cap: here, 64 MiB.
            let mut total = 0u64;
            let mut buf = vec![0; 64 * 1024];
            loop {
                match d.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => total += n as u64,
                }
                if total > 64 << 20 {
                    break;
                }
            }
            assert!(d.memory() <= 64 << 20, "{codec:?}: {}", d.memory());
        }
    }

    #[test]
    fn sniff_tells_each_format_and_zlib_only_when_allowed() {
        let text = sample(1, 10_000);
        for (codec, data) in [
            (Codec::Gzip, tool("gzip", &["-c"], &text)),
            (Codec::Bzip2, tool("bzip2", &["-c"], &text)),
            (Codec::Xz, tool("xz", &["-c"], &text)),
            (Codec::Lzma, tool("lzma", &["-c"], &text)),
            (Codec::Lz4, tool("lz4", &["-c"], &text)),
            (Codec::Lz4, tool("lz4", &["-l", "-c"], &text)),
            (Codec::Zstd, tool("zstd", &["-c"], &text)),
        ] {
            assert_eq!(sniff(&data, false), Some(codec));
            assert_eq!(sniff(&data[..512.min(data.len())], true), Some(codec));
        }
        let zlib = {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(&text).unwrap();
            e.finish().unwrap()
        };
        assert_eq!(sniff(&zlib, true), Some(Codec::Zlib));
        assert_eq!(sniff(&zlib, false), None);
        assert_eq!(
            sniff(b"x\x9cbut the checksum is wrong", true),
            Some(Codec::Zlib)
        );
        assert_eq!(sniff(b"x\x9d", true), None);
        assert_eq!(sniff(b"", true), None);
        assert_eq!(sniff(b"BZh9 not bzip2", true), None);
        assert_eq!(sniff(&text, true), None);
        // A random-looking file is not told as `.lzma`.
        let mut rng = Rng(7);
        for _ in 0..2000 {
            let head: Vec<u8> = (0..32).map(|_| rng.next() as u8).collect();
            assert_eq!(sniff(&head, false), None);
        }
    }

    #[test]
    fn an_error_is_returned_again_and_a_refusal_is_told_apart() {
        let text = sample(2, 100_000);
        let data = tool("xz", &["-c"], &text);
        let mut d = open(Codec::Xz, Box::new(&data[..data.len() / 2]), 64 << 20).unwrap();
        let mut out = Vec::new();
        let e = d.read_to_end(&mut out).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().starts_with("xz: "), "{e}");
        assert!(refused(&e).is_none());
        let again = d.read(&mut [0; 10]).unwrap_err();
        assert_eq!(again.to_string(), e.to_string());

        // A later zstd frame over the limit, read by the xz decoder above
        // it: the refusal comes up whole.
        let xz_data = tool("xz", &["-c"], &text);
        let (a, b) = xz_data.split_at(xz_data.len() / 2);
        let mut zst = tool("zstd", &["-c"], a);
        zst.extend(tool("zstd", &["-c", "--long=27"], b));
        let inner = open(Codec::Zstd, Box::new(&zst[..]), 64 << 20).unwrap();
        let mut outer = open(Codec::Xz, Box::new(inner), 64 << 20).unwrap();
        let e = outer.read_to_end(&mut Vec::new()).unwrap_err();
        let r = refused(&e).unwrap_or_else(|| panic!("{e}"));
        assert!(r.0.starts_with("zstd: ") && r.0.contains("128 MiB"), "{r}");
    }
}
