//! lz4 through `lz4_flex`'s frame decoder (never its block API:
//! RUSTSEC-2026-0041), every frame of the file, skippable frames skipped,
//! and the legacy format (magic `02 21 4C 18`, what OE's `lz4 -l` writes),
//! which the frame decoder reads too.
//!
//! Each frame's header is read here first: its block size (64 KiB to 4
//! MiB; 8 MiB in the legacy format) and mode fix what the decoder holds:
//! an input block and an output block, twice that and 64 KiB of history
//! for linked blocks. A frame asking more than the limit is refused. A
//! fresh decoder is made per frame (the crate's buffers are sized per
//! frame). A frame cut short is an error: the crate alone takes a missing
//! end mark for the end.

use std::io::{self, BufRead, Read};

use lz4_flex::frame::FrameDecoder;

use super::input::{check_memory, crate_error, damaged, Input, Refused, INPUT_BUF};

const FRAME: u32 = 0x184d_2204;
const LEGACY: u32 = 0x184c_2102;
const LEGACY_BLOCK: u64 = 8 << 20;

pub(super) struct Lz4<'a> {
    stage: Stage<'a>,
    limit: u64,
    memory: u64,
}

enum Stage<'a> {
    Frame {
        decoder: Box<FrameDecoder<Input<'a>>>,
        legacy: bool,
    },
    Done,
    Taken,
}

impl<'a> Lz4<'a> {
    pub(super) fn new(input: Input<'a>, limit: u64) -> io::Result<Lz4<'a>> {
        let mut this = Lz4 {
            stage: Stage::Taken,
            limit,
            memory: INPUT_BUF as u64,
        };
        this.stage = this.next_frame(input, true)?;
        Ok(this)
    }

    pub(super) fn memory(&self) -> u64 {
        self.memory
    }

    /// The next frame's decoder, skipping skippable frames; `Done` at the
    /// end or before bytes that start no frame (after the first).
    fn next_frame(&mut self, mut input: Input<'a>, first: bool) -> io::Result<Stage<'a>> {
        loop {
            let head = input.peek(8)?;
            if head.is_empty() && !first {
                return Ok(Stage::Done);
            }
            let magic = match head.get(..4) {
                Some(m) => u32::from_le_bytes([m[0], m[1], m[2], m[3]]),
                None if first => return Err(damaged("lz4", "not an lz4 frame")),
                None => return Ok(Stage::Done),
            };
            let (block, linked) = match magic {
                FRAME => {
                    let [_, _, _, _, flg, bd, ..] = *head else {
                        return Err(damaged("lz4", "the data ends early"));
                    };
                    let block = match (bd >> 4) & 7 {
                        n @ 4..=7 => 64u64 << (2 * (n - 4)),
                        _ => return Err(damaged("lz4", "corrupt frame header")),
                    };
                    if flg & 0x01 != 0 {
                        return Err(Refused(
                            "lz4: the frame needs a dictionary, which is not known".into(),
                        )
                        .into_io());
                    }
                    (block << 10, flg & 0x20 == 0)
                }
                LEGACY => (LEGACY_BLOCK, false),
                0x184d_2a50..=0x184d_2a5f => {
                    let [_, _, _, _, a, b, c, d] = *head else {
                        return Err(damaged("lz4", "the data ends early"));
                    };
                    let size = u64::from(u32::from_le_bytes([a, b, c, d]));
                    input.consume(8);
                    if !input.skip(size)? {
                        return Err(damaged("lz4", "the data ends early"));
                    }
                    continue;
                }
                _ if first => return Err(damaged("lz4", "not an lz4 frame")),
                // Trailing bytes: left unread.
                _ => return Ok(Stage::Done),
            };
            let out = if linked { 2 * block + 64 * 1024 } else { block };
            let need = INPUT_BUF as u64 + block + out;
            check_memory("lz4", block, need, self.limit)?;
            self.memory = self.memory.max(need);
            return Ok(Stage::Frame {
                decoder: Box::new(FrameDecoder::new(input)),
                legacy: magic == LEGACY,
            });
        }
    }

    pub(super) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let Stage::Frame { decoder, legacy } = &mut self.stage else {
                return Ok(0);
            };
            match decoder.read(buf) {
                Ok(0) => {}
                Ok(n) => return Ok(n),
                Err(e) => return Err(crate_error(decoder.get_mut(), "lz4", &e)),
            }
            // The frame ended: at its end mark, or (legacy) at the end of
            // the input. Without its end mark, a frame was cut short.
            if !*legacy && decoder.frame_info().is_some() {
                return Err(decoder
                    .get_mut()
                    .take_error()
                    .unwrap_or_else(|| damaged("lz4", "the data ends early")));
            }
            let Stage::Frame { decoder, .. } = std::mem::replace(&mut self.stage, Stage::Taken)
            else {
                return Ok(0);
            };
            let mut input = decoder.into_inner();
            if let Some(e) = input.take_error() {
                return Err(e);
            }
            self.stage = self.next_frame(input, false)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{decode, decode_err, hostile, sample, tool};
    use super::super::{open, refused, Codec};

    #[test]
    fn lz4_frames_legacy_and_skippable_frames_round_trip() {
        let text = sample(40, 3_000_000);
        for args in [
            &["-c"][..],
            &["-c", "-9", "-BD"],
            &["-c", "-B4", "--content-size"],
            &["-c", "-BX", "-B5"],
            &["-c", "-l"],
            &["-c", "-l", "-9"],
        ] {
            let data = tool("lz4", args, &text);
            let out = decode(Codec::Lz4, &data, 64 << 20).unwrap();
            assert!(out == text, "{args:?}: {} bytes", out.len());
        }
        // Frames one after the other, a skippable frame between them.
        let mut many = tool("lz4", &["-c"], b"first\n");
        many.extend([0x50, 0x2a, 0x4d, 0x18, 5, 0, 0, 0, 1, 2, 3, 4, 5]);
        many.extend(tool("lz4", &["-c"], b""));
        many.extend(tool("lz4", &["-c", "-B4"], &text));
        many.extend(b"trailing");
        let mut want = b"first\n".to_vec();
        want.extend(&text);
        assert_eq!(decode(Codec::Lz4, &many, 64 << 20).unwrap(), want);
    }

    #[test]
    fn a_block_size_over_the_limit_is_refused_and_a_cut_frame_is_an_error() {
        // lz4 picks a smaller block for a small input.
        let text = sample(41, 5_000_000);
        let big = tool("lz4", &["-c", "-B7", "-BD"], &text);
        let r = open(Codec::Lz4, Box::new(&big[..]), 8 << 20).unwrap_err();
        assert!(r.0.starts_with("lz4: "), "{r}");
        let legacy = tool("lz4", &["-c", "-l"], &text);
        assert!(open(Codec::Lz4, Box::new(&legacy[..]), 8 << 20).is_err());
        let small = tool("lz4", &["-c", "-B4"], &text);
        let mut both = small.clone();
        both.extend(&big);
        let e = decode_err(Codec::Lz4, &both, 8 << 20);
        assert!(refused(&e).is_some(), "{e}");
        // Cut before the end mark, and cut inside a block.
        let e = decode_err(Codec::Lz4, &small[..small.len() - 4], 8 << 20);
        assert_eq!(e.to_string(), "lz4: the data ends early");
        assert!(decode(Codec::Lz4, &small[..small.len() / 2], 8 << 20).is_err());
        let text = &text[..100_000];
        hostile(Codec::Lz4, &tool("lz4", &["-c", "-B4"], text), 9);
        hostile(
            Codec::Lz4,
            &tool("lz4", &["-c", "-B4", "-BD", "--content-size"], text),
            10,
        );
        hostile(Codec::Lz4, &tool("lz4", &["-c", "-l"], text), 11);
    }
}
