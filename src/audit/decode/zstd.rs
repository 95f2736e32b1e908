//! zstd through `ruzstd`'s frame decoder, every frame of the file,
//! skippable frames skipped.
//!
//! Each frame header's window (RFC 8878 3.1.1.1.2; for a single-segment
//! frame, its content size) is read here before ruzstd sees the frame:
//! ruzstd reserves the window on its first frame without checking it
//! against its own 100 MiB cap (only later frames are checked), and a
//! single-segment frame's window is its declared size, which a hostile
//! header sets to anything. A window over the limit (or over 64 MiB, e.g.
//! `zstd --long=27`) is refused.
//!
//! Memory: ruzstd keeps the window and the blocks decoded past it in a
//! ring buffer that grows by powers of two; each read decodes at most
//! `STEP` bytes more than it returns (a block is at most 128 KiB), so the
//! ring stays within the next power of two of window + 256 KiB. Its
//! scratch is bounded by the 128 KiB block: the literals and the block
//! read (128 KiB each), up to 43,690 sequences of 12 bytes in a `Vec`
//! that may double (1 MiB), Huffman and FSE tables: `SCRATCH`.

use std::io::{self, BufRead, Read};

use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};

use super::input::{check_memory, damaged, Input, Refused, INPUT_BUF};

const MAGIC: u32 = 0xfd2f_b528;
/// The most a read asks ruzstd for.
const STEP: usize = 64 * 1024;
const SCRATCH: u64 = 1536 * 1024;

pub(super) struct Zstd<'a> {
    input: Input<'a>,
    decoder: Box<FrameDecoder>,
    in_frame: bool,
    done: bool,
    limit: u64,
    memory: u64,
}

/// The window a frame header asks for (`head` from the magic on).
fn window(head: &[u8]) -> io::Result<u64> {
    let short = || damaged("zstd", "the data ends early");
    let descriptor = *head.get(4).ok_or_else(short)?;
    if descriptor & 0x08 != 0 {
        return Err(damaged("zstd", "corrupt frame header"));
    }
    if descriptor & 0x03 != 0 {
        return Err(
            Refused("zstd: the frame needs a dictionary, which is not known".into()).into_io(),
        );
    }
    let single = descriptor & 0x20 != 0;
    if !single {
        let w = *head.get(5).ok_or_else(short)?;
        let base = 1u64 << (10 + (w >> 3));
        return Ok(base + base / 8 * u64::from(w & 7));
    }
    // Single segment: no window byte, no dictionary id (checked above);
    // the content size is the window.
    let at = 5;
    Ok(match descriptor >> 6 {
        0 => u64::from(*head.get(at).ok_or_else(short)?),
        1 => {
            let b = head.get(at..at + 2).ok_or_else(short)?;
            u64::from(u16::from_le_bytes([b[0], b[1]])) + 256
        }
        2 => {
            let b = head.get(at..at + 4).ok_or_else(short)?;
            u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        }
        _ => {
            let b = head.get(at..at + 8).ok_or_else(short)?;
            let mut v = [0u8; 8];
            v.copy_from_slice(b);
            u64::from_le_bytes(v)
        }
    })
}

impl<'a> Zstd<'a> {
    pub(super) fn new(input: Input<'a>, limit: u64) -> io::Result<Zstd<'a>> {
        let mut this = Zstd {
            input,
            decoder: Box::new(FrameDecoder::new()),
            in_frame: false,
            done: false,
            limit,
            memory: INPUT_BUF as u64,
        };
        if !this.next_frame(true)? {
            return Err(damaged("zstd", "not a zstd frame"));
        }
        Ok(this)
    }

    pub(super) fn memory(&self) -> u64 {
        self.memory
    }

    /// Starts the next frame, skipping skippable frames; false at the end
    /// or before bytes that start no frame (left unread).
    fn next_frame(&mut self, first: bool) -> io::Result<bool> {
        loop {
            let head = self.input.peek(14)?;
            let Some(m) = head.get(..4) else {
                return if first && !head.is_empty() {
                    Err(damaged("zstd", "the data ends early"))
                } else {
                    Ok(false)
                };
            };
            let magic = u32::from_le_bytes([m[0], m[1], m[2], m[3]]);
            if magic & 0xffff_fff0 == 0x184d_2a50 {
                let [_, _, _, _, a, b, c, d, ..] = *head else {
                    return Err(damaged("zstd", "the data ends early"));
                };
                let size = u64::from(u32::from_le_bytes([a, b, c, d]));
                self.input.consume(8);
                if !self.input.skip(size)? {
                    return Err(damaged("zstd", "the data ends early"));
                }
                continue;
            }
            if magic != MAGIC {
                return if first {
                    Err(damaged("zstd", "not a zstd frame"))
                } else {
                    Ok(false)
                };
            }
            let window = window(head)?;
            let ring = window
                .saturating_add(4 * STEP as u64)
                .checked_next_power_of_two()
                .unwrap_or(u64::MAX);
            let need = (INPUT_BUF as u64)
                .saturating_add(ring)
                .saturating_add(SCRATCH);
            check_memory("zstd", window, need, self.limit)?;
            self.memory = self.memory.max(need);
            if self.decoder.reset(&mut self.input).is_err() {
                return Err(self.failed());
            }
            self.in_frame = true;
            return Ok(true);
        }
    }

    fn failed(&mut self) -> io::Error {
        // ruzstd's messages can hold values read from the data: not shown.
        self.input
            .take_error()
            .unwrap_or_else(|| damaged("zstd", "corrupt data"))
    }

    pub(super) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let step = buf.len().min(STEP);
        let buf = &mut buf[..step];
        loop {
            if self.done {
                return Ok(0);
            }
            if !self.in_frame {
                if !self.next_frame(false)? {
                    self.done = true;
                }
                continue;
            }
            while self.decoder.can_collect() < buf.len() && !self.decoder.is_finished() {
                let want = buf.len() - self.decoder.can_collect();
                if self
                    .decoder
                    .decode_blocks(&mut self.input, BlockDecodingStrategy::UptoBytes(want))
                    .is_err()
                {
                    return Err(self.failed());
                }
            }
            let n = match self.decoder.read(buf) {
                Ok(n) => n,
                Err(_) => return Err(self.failed()),
            };
            if n > 0 {
                return Ok(n);
            }
            if self.decoder.is_finished() && self.decoder.can_collect() == 0 {
                self.in_frame = false;
            } else {
                return Err(damaged("zstd", "corrupt data"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{decode, decode_err, hostile, sample, tool};
    use super::super::{open, refused, Codec};

    #[test]
    fn zstd_frames_and_skippable_frames_round_trip() {
        let text = sample(50, 3_000_000);
        for args in [
            &["-c"][..],
            &["-c", "-19"],
            &["-c", "-1", "--no-check"],
            &["-c", "--long=24"],
        ] {
            let data = tool("zstd", args, &text);
            let out = decode(Codec::Zstd, &data, 64 << 20).unwrap();
            assert!(out == text, "{args:?}: {} bytes", out.len());
        }
        // A known size makes a single-segment frame (no window byte).
        let dir = std::env::temp_dir().join(format!("decode-zstd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("small");
        std::fs::write(&file, &text[..5000]).unwrap();
        let single = tool("zstd", &["-c", file.to_str().unwrap()], b"");
        std::fs::remove_dir_all(&dir).unwrap();
        assert_ne!(single[4] & 0x20, 0, "not single-segment");
        let mut many = single.clone();
        many.extend([0x5e, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3]);
        many.extend(tool("zstd", &["-c"], b""));
        many.extend(tool("zstd", &["-c"], &text));
        many.extend(b"trailing");
        let mut want = text[..5000].to_vec();
        want.extend(&text);
        // Its window is its 5000 bytes: held, the ring and the scratch.
        let d = open(Codec::Zstd, Box::new(&single[..]), 3 << 20).unwrap();
        assert!(d.memory() < 3 << 20, "{}", d.memory());
        assert_eq!(decode(Codec::Zstd, &many, 64 << 20).unwrap(), want);
    }

    #[test]
    fn a_window_over_64_mib_or_the_limit_is_refused() {
        let text = sample(51, 200_000);
        let long = tool("zstd", &["-c", "--long=27"], &text);
        let r = open(Codec::Zstd, Box::new(&long[..]), 1 << 30).unwrap_err();
        assert!(
            r.0.contains("128 MiB") && r.0.contains("over the 64 MiB"),
            "{r}"
        );
        let normal = tool("zstd", &["-c", "-19"], &text);
        assert!(open(Codec::Zstd, Box::new(&normal[..]), 1 << 20).is_err());
        let mut both = normal.clone();
        both.extend(&long);
        let e = decode_err(Codec::Zstd, &both, 64 << 20);
        assert!(refused(&e).is_some(), "{e}");
        // A single-segment frame declaring 2^60 bytes: refused, not
        // reserved.
        let mut bomb = vec![0x28, 0xb5, 0x2f, 0xfd, 0xe0];
        bomb.extend((1u64 << 60).to_le_bytes());
        bomb.extend([1, 0, 0]);
        assert!(open(Codec::Zstd, Box::new(&bomb[..]), 64 << 20).is_err());
    }

    #[test]
    fn damaged_zstd_is_an_error_never_a_panic() {
        let text = sample(52, 100_000);
        let data = tool("zstd", &["-c"], &text);
        let e = decode_err(Codec::Zstd, &data[..data.len() - 10], 64 << 20);
        assert!(e.to_string().starts_with("zstd: "), "{e}");
        hostile(Codec::Zstd, &data, 12);
        hostile(
            Codec::Zstd,
            &tool("zstd", &["-c", "-19", "--no-check"], &text[..20_000]),
            13,
        );
    }
}
