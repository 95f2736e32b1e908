//! deflate data held in memory, gzip files (RFC 1952) and deflated zip
//! members, inflated by one reused `miniz_oxide` state into one reused
//! buffer per worker. A root file system holds tens of thousands of small
//! `.gz` files (manual pages, changelogs) and zip members (jars, wheels): a
//! fresh decoder, its buffers and a copy out of its window for each cost a
//! third of what the inflating costs.
//!
//! Every member of a gzip file is inflated, one after the other, into one content. The
//! CRC is not checked: the content is searched, not trusted, and a bad CRC
//! must not hide it. What is not deflate data (each member's header with
//! its name, comment and extra field, the trailers, anything after the
//! last member) is returned as ranges for the caller to search as raw
//! bytes; the deflate data itself needs no raw search, as everything it
//! holds is in the content.

use std::ops::Range;

use miniz_oxide::inflate::core::{decompress, inflate_flags, DecompressorOxide};
use miniz_oxide::inflate::TINFLStatus;

/// deflate's largest ratio of output to input (a run of 258-byte matches):
/// a size hint above it is wrong.
const MAX_RATIO: usize = 1032;

/// A buffer larger than this is freed after use, not kept for the next
/// file.
const KEEP: usize = 8 * 1024 * 1024;

/// What inflating one deflate stream gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Inflated {
    /// The content is the buffer up to `len`; the stream took `used` bytes
    /// of the input.
    Done { len: usize, used: usize },
    /// The content is larger than the cap.
    TooLarge,
    /// The data is damaged: the buffer up to `len` is what was inflated
    /// before the damage.
    Damaged { len: usize, why: &'static str },
}

/// What inflating one gzip file gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Gunzip {
    /// Every member inflated: the content is the first `len` bytes of the
    /// buffer; `raw` the parts of the file that are not deflate data.
    Done { len: usize, raw: Vec<Range<usize>> },
    /// The content is larger than the cap.
    TooLarge,
    /// The data is damaged: the first `len` bytes of the buffer are what
    /// was inflated before the damage.
    Damaged { len: usize, why: &'static str },
}

/// One inflate state and output buffer, reused from file to file.
#[derive(Default)]
pub struct Inflater {
    state: Box<DecompressorOxide>,
    out: Vec<u8>,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater")
            .field("buffer", &self.out.len())
            .finish_non_exhaustive()
    }
}

impl Inflater {
    /// The buffer, for a caller that holds it while it searches the
    /// content (a gzip inside it gets a fresh one); give it back with
    /// [`Inflater::put_back`].
    pub fn take_buffer(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Keeps `out` for the next file, unless it is large or the one kept
    /// is larger.
    pub fn put_back(&mut self, out: Vec<u8>) {
        if out.len() <= KEEP && out.len() > self.out.len() {
            self.out = out;
        }
    }

    /// Inflates every member of `data` into `out`, at most `cap` bytes.
    pub fn gunzip(&mut self, data: &[u8], out: &mut Vec<u8>, cap: usize) -> Gunzip {
        // ISIZE, the last four bytes: the size modulo 2^32 of the last
        // member (enough to size the buffer once for the usual one-member
        // file).
        let isize = data
            .len()
            .checked_sub(4)
            .and_then(|at| data.get(at..))
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map_or(0, |b| u64::from(u32::from_le_bytes(b)));
        size_for(out, isize, data.len(), cap);
        let mut len = 0;
        let mut raw = Vec::new();
        // Where the bytes not yet known to be deflate data start.
        let mut raw_start = 0;
        let mut at = 0;
        while at < data.len() {
            let Some(start) = header(&data[at..]).map(|h| at + h) else {
                if at == 0 {
                    return Gunzip::Damaged {
                        len: 0,
                        why: "not a gzip header",
                    };
                }
                // Trailing bytes (zeros, garbage): searched raw.
                break;
            };
            let used = match self.inflate(&data[start..], out, len, cap) {
                Inflated::Done { len: end, used } => {
                    len = end;
                    used
                }
                Inflated::TooLarge => return Gunzip::TooLarge,
                Inflated::Damaged { len, why } => return Gunzip::Damaged { len, why },
            };
            raw.push(raw_start..start);
            raw_start = start + used;
            // The trailer: CRC-32 and ISIZE.
            at = raw_start.saturating_add(8);
        }
        if raw_start < data.len() {
            raw.push(raw_start..data.len());
        }
        Gunzip::Done { len, raw }
    }

    /// Inflates the deflate stream at the start of `data` into `out` from
    /// `start` on, so that the content ends at most at `cap`.
    pub fn inflate(
        &mut self,
        data: &[u8],
        out: &mut Vec<u8>,
        start: usize,
        cap: usize,
    ) -> Inflated {
        self.state.init();
        let mut pos = 0;
        let mut len = start;
        loop {
            if len == out.len() && !grow(out, cap) {
                return Inflated::TooLarge;
            }
            let flags = inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
            let (status, used, written) =
                decompress(&mut self.state, &data[pos..], out, len, flags);
            pos += used;
            len += written;
            match status {
                TINFLStatus::Done if len > cap => return Inflated::TooLarge,
                TINFLStatus::Done => return Inflated::Done { len, used: pos },
                TINFLStatus::HasMoreOutput => {
                    if !grow(out, cap) {
                        return Inflated::TooLarge;
                    }
                }
                TINFLStatus::NeedsMoreInput | TINFLStatus::FailedCannotMakeProgress => {
                    return Inflated::Damaged {
                        len,
                        why: "it ends before its deflate data does",
                    };
                }
                _ => {
                    return Inflated::Damaged {
                        len,
                        why: "invalid deflate data",
                    };
                }
            }
        }
    }
}

/// Sizes `out` once for content of `hint` bytes (what the container
/// declares), from `compressed` bytes: never beyond the cap or what deflate
/// can give.
pub fn size_for(out: &mut Vec<u8>, hint: u64, compressed: usize, cap: usize) {
    let size = usize::try_from(hint)
        .unwrap_or(usize::MAX)
        .min(compressed.saturating_mul(MAX_RATIO))
        .min(cap.saturating_add(1));
    if out.len() < size {
        out.resize(size, 0);
    }
}

/// Doubles the buffer (at least 64 KiB, at most one byte over the cap);
/// false when it is already there.
fn grow(out: &mut Vec<u8>, cap: usize) -> bool {
    let most = cap.saturating_add(1);
    if out.len() >= most {
        return false;
    }
    let size = out.len().saturating_mul(2).max(64 * 1024).min(most);
    out.resize(size, 0);
    true
}

/// Where the deflate data of the member at the start of `data` begins;
/// `None` when `data` does not start with a gzip header (RFC 1952, 2.3).
fn header(data: &[u8]) -> Option<usize> {
    const FHCRC: u8 = 2;
    const FEXTRA: u8 = 4;
    const FNAME: u8 = 8;
    const FCOMMENT: u8 = 16;
    const RESERVED: u8 = 0xe0;
    let fixed = data.get(..10)?;
    if fixed[..3] != [0x1f, 0x8b, 8] || fixed[3] & RESERVED != 0 {
        return None;
    }
    let flags = fixed[3];
    let mut at = 10;
    if flags & FEXTRA != 0 {
        let xlen = data.get(at..at + 2)?;
        at += 2 + usize::from(u16::from_le_bytes([xlen[0], xlen[1]]));
    }
    for field in [FNAME, FCOMMENT] {
        if flags & field != 0 {
            at += data.get(at..)?.iter().position(|&b| b == 0)? + 1;
        }
    }
    if flags & FHCRC != 0 {
        at += 2;
    }
    (at <= data.len()).then_some(at)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn member(content: &[u8], name: Option<&str>) -> Vec<u8> {
        let mut builder = flate2::GzBuilder::new();
        if let Some(name) = name {
            builder = builder.filename(name);
        }
        let mut enc = builder.write(Vec::new(), flate2::Compression::default());
        enc.write_all(content).unwrap();
        enc.finish().unwrap()
    }

    fn gunzip(data: &[u8], cap: usize) -> (Gunzip, Vec<u8>) {
        let mut inflater = Inflater::default();
        let mut out = inflater.take_buffer();
        let result = inflater.gunzip(data, &mut out, cap);
        (result, out)
    }

    #[test]
    fn every_member_is_inflated_and_the_rest_is_raw() {
        let one = member(&b"first ".repeat(1000), Some("name-one"));
        let two = member(b"second", None);
        let mut data = one.clone();
        data.extend_from_slice(&two);
        data.extend_from_slice(b"\0\0trailing bytes");
        let (result, out) = gunzip(&data, 1 << 20);
        let Gunzip::Done { len, raw } = result else {
            panic!("{result:?}")
        };
        let mut want = b"first ".repeat(1000);
        want.extend_from_slice(b"second");
        assert_eq!(&out[..len], &want[..]);
        // The first header holds the name; the last range is the second
        // trailer and what follows it.
        assert_eq!(raw[0].start, 0);
        assert!(data[raw[0].clone()].ends_with(b"name-one\0"));
        assert_eq!(raw[1].end, one.len() + 10);
        assert!(data[raw[2].clone()].ends_with(b"\0\0trailing bytes"));
        assert_eq!(raw[2].end, data.len());
    }

    #[test]
    fn the_buffer_is_reused_and_the_cap_holds() {
        let data = member(&[b'x'; 300_000], None);
        let mut inflater = Inflater::default();
        for _ in 0..3 {
            let mut out = inflater.take_buffer();
            let result = inflater.gunzip(&data, &mut out, 300_000);
            assert!(matches!(result, Gunzip::Done { len: 300_000, .. }));
            inflater.put_back(out);
        }
        assert_eq!(gunzip(&data, 299_999).0, Gunzip::TooLarge);
    }

    #[test]
    fn damage_is_told_with_what_came_before_it() {
        let data = member(&b"abcdefgh".repeat(20_000), None);
        let (result, _) = gunzip(&data[..data.len() / 2], 1 << 20);
        assert!(matches!(result, Gunzip::Damaged { .. }), "{result:?}");
        assert!(matches!(
            gunzip(b"\x1f\x8b\x09rest-of-it", 100).0,
            Gunzip::Damaged { len: 0, .. }
        ));
        let mut bad = data.clone();
        bad[10] = 0xff;
        assert!(matches!(gunzip(&bad, 1 << 20).0, Gunzip::Damaged { .. }));
    }
}
