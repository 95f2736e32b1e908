//! bzip2 through `bzip2-rs`, every stream of the file: pbzip2 (OE's
//! `CONVERSION_CMD:bz2`) writes one stream per 900 kB block, and the crate
//! stops after the first.
//!
//! The crate buffers up to a block of input ahead and keeps where a stream
//! ended to itself, so it is given one stream at a time: the end of a
//! stream is found here, before the bytes reach it, as the next stream's
//! start (`BZh1`..`BZh9` and a block or end-of-stream magic, byte-aligned)
//! right after an end-of-stream marker (its 48-bit magic and CRC, then 0-7
//! zero bits of padding to the byte). Those 128 bits cannot be mistaken in
//! Huffman-coded data except on purpose, and a false boundary only cuts a
//! stream short, which is an error.
//!
//! Memory: the crate's block (4 bytes per byte of the 100k-900k block
//! size the header names) and its input buffer (one block, which a `Vec`
//! may double), whatever the data.

use std::io::{self, BufRead};

use bzip2_rs::decoder::{Decoder, ReadState, WriteState};

use super::input::{check_memory, damaged, Input, INPUT_BUF};

const BLOCK_MAGIC: [u8; 6] = [0x31, 0x41, 0x59, 0x26, 0x53, 0x59];
const END_MAGIC: u64 = 0x1772_4538_5090;
const END_MAGIC_BYTES: [u8; 6] = [0x17, 0x72, 0x45, 0x38, 0x50, 0x90];

/// The bytes of a stream's start looked at: `BZh9` and a magic.
const START: usize = 10;
/// The bytes before a stream's start that hold the previous end-of-stream
/// marker (48 + 32 bits and up to 7 of padding).
const BEFORE: usize = 11;

/// The block size (1-9, in 100 kB) when `head` starts a bzip2 stream.
fn stream_start(head: &[u8]) -> Option<u8> {
    match head {
        [b'B', b'Z', b'h', n @ b'1'..=b'9', magic @ ..]
            if magic.starts_with(&BLOCK_MAGIC) || magic.starts_with(&END_MAGIC_BYTES) =>
        {
            Some(n - b'0')
        }
        _ => None,
    }
}

pub(super) fn sniff(head: &[u8]) -> bool {
    stream_start(head).is_some()
}

/// Whether the `BEFORE` bytes `tail` end with an end-of-stream marker and
/// its padding.
fn ends_a_stream(tail: &[u8]) -> bool {
    let Ok(tail) = <[u8; BEFORE]>::try_from(tail) else {
        return false;
    };
    let mut bytes = [0u8; 16];
    bytes[16 - BEFORE..].copy_from_slice(&tail);
    let bits = u128::from_be_bytes(bytes);
    (0..8).any(|pad| {
        bits & ((1 << pad) - 1) == 0 && (bits >> (pad + 32)) as u64 & ((1 << 48) - 1) == END_MAGIC
    })
}

pub(super) struct Bzip2<'a> {
    input: Input<'a>,
    decoder: Option<Decoder>,
    /// Bytes of the current stream not yet given to the decoder that are
    /// known to belong to it (before the next stream's start, if seen).
    ready: usize,
    /// The next stream starts after `ready` bytes.
    boundary: bool,
    /// Empty writes in a row without output (the crate's end handshake
    /// takes two; more is a stall).
    idle: u32,
    limit: u64,
    memory: u64,
}

impl<'a> Bzip2<'a> {
    pub(super) fn new(input: Input<'a>, limit: u64) -> io::Result<Bzip2<'a>> {
        let mut this = Bzip2 {
            input,
            decoder: None,
            ready: 0,
            boundary: false,
            idle: 0,
            limit,
            memory: 0,
        };
        if !this.start_stream()? {
            return Err(damaged("bzip2", "not a bzip2 stream"));
        }
        Ok(this)
    }

    pub(super) fn memory(&self) -> u64 {
        self.memory
    }

    /// Starts the stream at the input's position; false when there is none
    /// (the end, or trailing bytes).
    fn start_stream(&mut self) -> io::Result<bool> {
        let head = self.input.peek(START)?;
        let Some(size) = stream_start(head) else {
            return Ok(false);
        };
        let block = u64::from(size) * 100_000;
        let need = 4 * block + 2 * block + 64 * 1024 + INPUT_BUF as u64;
        check_memory("bzip2", block, need, self.limit)?;
        self.memory = self.memory.max(need);
        self.decoder = Some(Decoder::new());
        self.ready = 0;
        self.boundary = false;
        self.idle = 0;
        Ok(true)
    }

    /// Finds how many bytes ahead belong to the current stream.
    fn look_ahead(&mut self) -> io::Result<()> {
        let window = self.input.peek(INPUT_BUF / 2)?;
        let at_end = window.len() < INPUT_BUF / 2;
        // Starts looked at: from the window's `BEFORE`th byte (the stream's
        // own start at 0 is not one), through the last with `START` bytes.
        let last = window.len().saturating_sub(START);
        for at in BEFORE..=last {
            if window.get(at) == Some(&b'B')
                && stream_start(&window[at..]).is_some()
                && ends_a_stream(&window[at - BEFORE..at])
            {
                self.ready = at;
                self.boundary = true;
                return Ok(());
            }
        }
        // Keep what a start straddling the window's end needs.
        self.ready = if at_end {
            window.len()
        } else {
            window.len() - START - BEFORE
        };
        Ok(())
    }

    pub(super) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some(decoder) = self.decoder.as_mut() else {
                return Ok(0);
            };
            let state = decoder
                .read(buf)
                .map_err(|_| damaged("bzip2", "corrupt data"))?;
            match state {
                ReadState::Read(0) => {
                    self.idle += 1;
                    if self.idle > 3 {
                        return Err(damaged("bzip2", "corrupt data"));
                    }
                }
                ReadState::Read(n) => {
                    self.idle = 0;
                    return Ok(n);
                }
                ReadState::Eof => {
                    self.decoder = None;
                    if self.boundary {
                        // Skips what the decoder did not take of the stream
                        // (nothing, for a well-formed one).
                        self.input.consume(self.ready);
                    } else {
                        // The last stream: what follows is left unread.
                        return Ok(0);
                    }
                    if !self.start_stream()? {
                        return Ok(0);
                    }
                }
                ReadState::NeedsWrite(space) => {
                    if self.ready == 0 && !self.boundary {
                        self.look_ahead()?;
                    }
                    let Some(decoder) = self.decoder.as_mut() else {
                        return Ok(0);
                    };
                    let n = self.ready.min(space);
                    let written = if n == 0 {
                        self.idle += 1;
                        if self.idle > 3 {
                            return Err(damaged("bzip2", "the data ends early"));
                        }
                        write(decoder, &[])?
                    } else {
                        let data = self.input.fill_buf()?;
                        let n = n.min(data.len());
                        let written = write(decoder, &data[..n])?;
                        self.input.consume(written);
                        written
                    };
                    if written > 0 {
                        self.idle = 0;
                    }
                    self.ready -= written;
                }
            }
        }
    }
}

fn write(decoder: &mut Decoder, data: &[u8]) -> io::Result<usize> {
    match decoder.write(data) {
        Ok(WriteState::Written(n)) => Ok(n.min(data.len())),
        Ok(WriteState::NeedsRead) => Ok(0),
        Err(_) => Err(damaged("bzip2", "corrupt data")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{decode, decode_err, hostile, sample, tool};
    use super::super::{open, refused, Codec};

    #[test]
    fn every_stream_is_read_pbzip2_and_concatenated_files_alike() {
        // pbzip2: one stream per 100 kB block here (-b1), so many streams.
        let text = sample(20, 1_500_000);
        let data = tool("pbzip2", &["-c", "-b1", "-p2"], &text);
        let starts = data.windows(4).filter(|w| w.starts_with(b"BZh")).count();
        assert!(starts > 5, "{starts}");
        let out = decode(Codec::Bzip2, &data, 64 << 20).unwrap();
        assert!(out == text, "{} of {} bytes", out.len(), text.len());

        let mut two = tool("bzip2", &["-c", "-1"], b"first\n");
        two.extend(tool("bzip2", &["-c"], b""));
        two.extend(tool("bzip2", &["-c", "-9"], &text[..1000]));
        two.extend(b"trailing garbage");
        let mut want = b"first\n".to_vec();
        want.extend(&text[..1000]);
        assert_eq!(decode(Codec::Bzip2, &two, 64 << 20).unwrap(), want);
    }

    #[test]
    fn a_block_size_over_the_limit_is_refused_and_damage_is_an_error() {
        let text = sample(21, 200_000);
        let data = tool("bzip2", &["-c", "-9"], &text);
        let r = open(Codec::Bzip2, Box::new(&data[..]), 2 << 20).unwrap_err();
        assert!(r.0.starts_with("bzip2: "), "{r}");
        let small = tool("bzip2", &["-c", "-1"], &text);
        let d = open(Codec::Bzip2, Box::new(&small[..]), 2 << 20).unwrap();
        assert!(d.memory() <= 2 << 20);
        // A later stream over the limit: an error holding the refusal.
        let mut both = small.clone();
        both.extend(&data);
        let e = decode_err(Codec::Bzip2, &both, 2 << 20);
        assert!(refused(&e).is_some(), "{e}");

        let e = decode_err(Codec::Bzip2, &data[..data.len() - 100], 64 << 20);
        assert!(e.to_string().starts_with("bzip2: "), "{e}");
        hostile(
            Codec::Bzip2,
            &tool("bzip2", &["-c", "-1"], &text[..20_000]),
            4,
        );
        hostile(
            Codec::Bzip2,
            &tool("pbzip2", &["-c", "-b1"], &sample(22, 250_000)),
            5,
        );
    }
}
