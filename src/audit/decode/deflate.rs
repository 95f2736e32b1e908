//! gzip (RFC 1952, every member), zlib (RFC 1950) and raw deflate (RFC
//! 1951) through `miniz_oxide`'s streaming inflater, which holds deflate's
//! 32 KiB window itself: memory is that state and the input buffer,
//! whatever the data. The headers are read here: gzip's name, comment and
//! extra field are skipped as they stream by (never held), and neither
//! CRC-32 nor Adler-32 is checked.

use std::io::{self, BufRead};
use std::mem::size_of;

use miniz_oxide::inflate::stream::{inflate, InflateState};
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};

use super::input::{check_memory, damaged, Input, Refused, INPUT_BUF};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wrap {
    Gzip,
    Zlib,
    Raw,
}

impl Wrap {
    fn name(self) -> &'static str {
        match self {
            Wrap::Gzip => "gzip",
            Wrap::Zlib => "zlib",
            Wrap::Raw => "deflate",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Before a gzip member's header (`first`: the file's own, which must
    /// be there).
    Header {
        first: bool,
    },
    Data,
    Done,
}

pub(super) struct Inflate<'a> {
    input: Input<'a>,
    state: Box<InflateState>,
    wrap: Wrap,
    phase: Phase,
}

/// Whether `cmf`, `flg` are a zlib header (RFC 1950 2.2): deflate, a
/// window of at most 32 KiB, the header checksum right.
fn zlib_ok(cmf: u8, flg: u8) -> bool {
    cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0
}

/// zlib's usual header (the 32 KiB window: `78 01/5e/9c/da`) when `head`
/// starts with one; `Some(true)` when it asks for a preset dictionary.
pub(super) fn zlib_header(head: &[u8]) -> Option<bool> {
    let (&cmf, &flg) = (head.first()?, head.get(1)?);
    (cmf == 0x78 && zlib_ok(cmf, flg)).then_some(flg & 0x20 != 0)
}

impl<'a> Inflate<'a> {
    pub(super) fn new(mut input: Input<'a>, wrap: Wrap, limit: u64) -> io::Result<Inflate<'a>> {
        let held = size_of::<InflateState>() as u64 + INPUT_BUF as u64;
        check_memory(wrap.name(), 32 * 1024, held, limit)?;
        let phase = match wrap {
            Wrap::Gzip => Phase::Header { first: true },
            Wrap::Zlib => {
                let head = input.peek(2)?;
                let flg = match head {
                    [cmf, flg, ..] if zlib_ok(*cmf, *flg) => *flg,
                    _ => return Err(damaged("zlib", "not a zlib header")),
                };
                if flg & 0x20 != 0 {
                    return Err(Refused(
                        "zlib: the stream needs a preset dictionary, which is not known".into(),
                    )
                    .into_io());
                }
                input.consume(2);
                Phase::Data
            }
            Wrap::Raw => Phase::Data,
        };
        Ok(Inflate {
            input,
            state: InflateState::new_boxed(DataFormat::Raw),
            wrap,
            phase,
        })
    }

    pub(super) fn memory(&self) -> u64 {
        size_of::<InflateState>() as u64 + INPUT_BUF as u64
    }

    pub(super) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.phase {
                Phase::Done => return Ok(0),
                Phase::Header { first } => {
                    if !self.gzip_header(first)? {
                        self.phase = Phase::Done;
                        continue;
                    }
                    self.state.reset(DataFormat::Raw);
                    self.phase = Phase::Data;
                }
                Phase::Data => {
                    let data = self.input.fill_buf()?;
                    let at_end = data.is_empty();
                    let r = inflate(&mut self.state, data, buf, MZFlush::None);
                    self.input.consume(r.bytes_consumed);
                    match r.status {
                        Ok(MZStatus::StreamEnd) => self.end_of_stream()?,
                        Ok(_) => {}
                        // No progress for want of input: the input ended.
                        Err(MZError::Buf) if at_end && r.bytes_written == 0 => {
                            return Err(self.failed("the data ends early"));
                        }
                        Err(MZError::Buf) => {}
                        Err(_) => return Err(self.failed("corrupt deflate data")),
                    }
                    if r.bytes_written > 0 {
                        return Ok(r.bytes_written);
                    }
                    if r.bytes_consumed == 0 && !at_end && self.phase == Phase::Data {
                        return Err(self.failed("corrupt deflate data"));
                    }
                }
            }
        }
    }

    fn failed(&mut self, what: &str) -> io::Error {
        match self.input.take_error() {
            Some(e) => e,
            None => damaged(self.wrap.name(), what),
        }
    }

    /// After a deflate stream: gzip's trailer (CRC-32, size) and maybe
    /// another member; zlib's Adler-32. Neither is checked, and a trailer
    /// cut short is no error: the content is all there.
    fn end_of_stream(&mut self) -> io::Result<()> {
        self.phase = match self.wrap {
            Wrap::Gzip => {
                self.input.skip(8)?;
                Phase::Header { first: false }
            }
            Wrap::Zlib => {
                self.input.skip(4)?;
                Phase::Done
            }
            Wrap::Raw => Phase::Done,
        };
        Ok(())
    }

    /// Reads a gzip member's header (RFC 1952 2.3); false when there is
    /// none (after the first member: trailing bytes, left unread).
    fn gzip_header(&mut self, first: bool) -> io::Result<bool> {
        const FHCRC: u8 = 2;
        const FEXTRA: u8 = 4;
        const FNAME: u8 = 8;
        const FCOMMENT: u8 = 16;
        const RESERVED: u8 = 0xe0;
        let head = self.input.peek(10)?;
        if head.len() < 3 || head[..3] != [0x1f, 0x8b, 8] {
            return if first {
                Err(damaged("gzip", "not a gzip header"))
            } else {
                Ok(false)
            };
        }
        if head.len() < 10 {
            return Err(damaged("gzip", "the data ends early"));
        }
        let flags = head[3];
        if flags & RESERVED != 0 {
            return Err(damaged("gzip", "corrupt header"));
        }
        self.input.consume(10);
        let ends_early = || damaged("gzip", "the data ends early");
        if flags & FEXTRA != 0 {
            let xlen = self.input.peek(2)?;
            if xlen.len() < 2 {
                return Err(ends_early());
            }
            let xlen = u64::from(u16::from_le_bytes([xlen[0], xlen[1]]));
            self.input.consume(2);
            if !self.input.skip(xlen)? {
                return Err(ends_early());
            }
        }
        for field in [FNAME, FCOMMENT] {
            if flags & field == 0 {
                continue;
            }
            // Skipped up to its NUL as it streams by, however long.
            loop {
                let data = self.input.fill_buf()?;
                if data.is_empty() {
                    return Err(ends_early());
                }
                match data.iter().position(|&b| b == 0) {
                    Some(at) => {
                        self.input.consume(at + 1);
                        break;
                    }
                    None => {
                        let n = data.len();
                        self.input.consume(n);
                    }
                }
            }
        }
        if flags & FHCRC != 0 && !self.input.skip(2)? {
            return Err(ends_early());
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::super::tests::{decode, decode_err, hostile, sample, tool};
    use super::super::{open, Codec};

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn raw(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_members_are_all_read_with_their_header_fields_skipped() {
        let one = sample(10, 300_000);
        let two = sample(11, 1000);
        let mut data = tool("gzip", &["-c"], &one);
        // A member with a name, comment and extra field (flate2 writes
        // them; gzip(1) writes only the name).
        let mut b = flate2::GzBuilder::new()
            .filename(&b"name-of-the-file"[..])
            .comment(&b"a comment"[..])
            .extra(vec![7u8; 300])
            .write(Vec::new(), flate2::Compression::fast());
        b.write_all(&two).unwrap();
        data.extend(b.finish().unwrap());
        data.extend(tool("gzip", &["-c"], b""));
        data.extend(b"\0\0\0\0trailing bytes");
        let mut want = one.clone();
        want.extend(&two);
        assert_eq!(decode(Codec::Gzip, &data, 1 << 20).unwrap(), want);
    }

    #[test]
    fn zlib_and_raw_deflate_round_trip_and_end_at_their_stream() {
        let text = sample(12, 200_000);
        let mut z = zlib(&text);
        z.extend(b"after the stream");
        assert_eq!(decode(Codec::Zlib, &z, 1 << 20).unwrap(), text);
        let mut r = raw(&text);
        r.extend(b"after");
        assert_eq!(decode(Codec::Deflate, &r, 1 << 20).unwrap(), text);
        // Reading one byte at a time gives the same.
        let mut d = open(Codec::Deflate, Box::new(&r[..]), 1 << 20).unwrap();
        let mut out = Vec::new();
        let mut byte = [0u8; 1];
        while d.read(&mut byte).unwrap() == 1 {
            out.push(byte[0]);
        }
        assert_eq!(out, text);
        assert!(d.memory() < 200 * 1024, "{}", d.memory());
    }

    #[test]
    fn damaged_deflate_data_is_an_error_never_a_panic() {
        let text = sample(13, 50_000);
        let gz = tool("gzip", &["-c"], &text);
        let e = decode_err(Codec::Gzip, &gz[..gz.len() / 2], 1 << 20);
        assert_eq!(e.to_string(), "gzip: the data ends early");
        assert!(decode(Codec::Gzip, b"\x1f\x8b\x09", 1 << 20).is_err());
        let e = decode_err(Codec::Zlib, b"\x78\xbb\0\0", 1 << 20);
        assert!(e.to_string().contains("preset dictionary"), "{e}");
        // Under the state's size: refused.
        assert!(open(Codec::Gzip, Box::new(&gz[..]), 1024).is_err());
        hostile(Codec::Gzip, &gz, 1);
        hostile(Codec::Zlib, &zlib(&text), 2);
        hostile(Codec::Deflate, &raw(&text), 3);
    }
}
