//! xz (the container is read here, the LZMA2 data by [`super::lzma`]) and
//! `.lzma` (its LZMA reader).
//!
//! The xz format (xz-file-format-1.2.1.txt): a stream is a 12-byte header,
//! blocks, an index and a 12-byte footer; streams may follow one another,
//! with zero padding between them. Each block header names the block's
//! filters: only LZMA2 alone is decoded (BCJ and delta filters are refused,
//! by name), and the dictionary it names is what the block's decoder holds,
//! whatever the block's size (`lzma-rs` held a whole block: 2.1 GB for a
//! 156 KB `.tar.xz`). When the header also gives the block's uncompressed
//! size, the dictionary needs to be no larger than that. The index is
//! skipped (its records are read, not kept), and no CRC or check is
//! verified: the content is searched, not trusted.

use std::io::{self, BufRead, Read};

use super::lzma::{Lzma2, LzmaAlone, MODEL_FIXED};

use super::input::{check_memory, damaged, Input, Refused, INPUT_BUF};

const MAGIC: &[u8; 6] = b"\xfd7zXZ\x00";
const FOOTER_MAGIC: &[u8; 2] = b"YZ";
const LZMA2: u64 = 0x21;
/// The LZMA state of an LZMA2 stream (its probabilities, lc + lp <= 4:
/// 24 KiB, and the rest), rounded up.
const LZMA2_FIXED: u64 = 64 * 1024 + 32 * 1024;

pub(super) struct Xz<'a> {
    stage: Stage<'a>,
    limit: u64,
    memory: u64,
}

enum Stage<'a> {
    Block(Box<Block<'a>>),
    Done,
    Taken,
}

struct Block<'a> {
    reader: Lzma2<'a>,
    /// Where the block (its header) started, in input bytes.
    start: u64,
    check: u64,
}

impl<'a> Xz<'a> {
    pub(super) fn new(mut input: Input<'a>, limit: u64) -> io::Result<Xz<'a>> {
        let check = stream_header(&mut input)?;
        let mut this = Xz {
            stage: Stage::Taken,
            limit,
            memory: INPUT_BUF as u64,
        };
        this.stage = this.next_block(input, check)?;
        Ok(this)
    }

    pub(super) fn memory(&self) -> u64 {
        self.memory
    }

    pub(super) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match &mut self.stage {
                Stage::Done | Stage::Taken => return Ok(0),
                Stage::Block(block) => match block.reader.read(buf) {
                    Ok(0) => {}
                    Ok(n) => return Ok(n),
                    Err(e) => return Err(e),
                },
            }
            // The block's LZMA2 data ended: its padding and check, then
            // the next block, index or stream.
            let Stage::Block(block) = std::mem::replace(&mut self.stage, Stage::Taken) else {
                return Ok(0);
            };
            let Block {
                reader,
                start,
                check,
            } = *block;
            let mut input = reader.into_inner();
            let size = input.consumed - start;
            let padding = (4 - size % 4) % 4;
            if !input.skip(padding + check)? {
                return Err(damaged("xz", "the data ends early"));
            }
            self.stage = self.next_block(input, check)?;
        }
    }

    /// Reads on from between blocks to the next block (through the index,
    /// the footer and the next streams' headers); `Done` at the end.
    fn next_block(&mut self, mut input: Input<'a>, mut check: u64) -> io::Result<Stage<'a>> {
        loop {
            let start = input.consumed;
            let Some(size) = input.byte()? else {
                return Err(damaged("xz", "the data ends early"));
            };
            if size != 0 {
                let len = (usize::from(size) + 1) * 4;
                let mut header = [0u8; 1024];
                header[0] = size;
                if input.read_exact(&mut header[1..len]).is_err() {
                    return Err(input
                        .take_error()
                        .unwrap_or_else(|| damaged("xz", "the data ends early")));
                }
                let dict = block_dictionary(&header[..len])?;
                let need = INPUT_BUF as u64 + dict + LZMA2_FIXED;
                check_memory("xz", dict, need, self.limit)?;
                self.memory = self.memory.max(need);
                // dict <= MAX_WINDOW: fits in u32.
                let dict =
                    u32::try_from(dict).map_err(|_| damaged("xz", "corrupt block header"))?;
                return Ok(Stage::Block(Box::new(Block {
                    reader: Lzma2::new(input, dict),
                    start,
                    check,
                })));
            }
            skip_index(&mut input, start)?;
            let mut footer = [0u8; 12];
            if input.read_exact(&mut footer).is_err() {
                return Err(input
                    .take_error()
                    .unwrap_or_else(|| damaged("xz", "the data ends early")));
            }
            if &footer[10..] != FOOTER_MAGIC {
                return Err(damaged("xz", "corrupt stream footer"));
            }
            // Stream padding (zeros), then another stream or the end.
            loop {
                let zeros = input.fill_buf()?.iter().take_while(|&&b| b == 0).count();
                if zeros == 0 {
                    break;
                }
                input.consume(zeros);
            }
            if !input.peek(MAGIC.len())?.starts_with(MAGIC) {
                // The end, or trailing bytes: left unread.
                return Ok(Stage::Done);
            }
            check = stream_header(&mut input)?;
        }
    }
}

/// Reads a stream header; the size of each block's check.
fn stream_header(input: &mut Input<'_>) -> io::Result<u64> {
    let head = input.peek(12)?;
    if !head.starts_with(MAGIC) {
        return Err(damaged("xz", "not an xz stream"));
    }
    if head.len() < 12 {
        return Err(damaged("xz", "the data ends early"));
    }
    let (flags0, flags1) = (head[6], head[7]);
    if flags0 != 0 || flags1 & 0xf0 != 0 {
        return Err(damaged("xz", "corrupt stream header"));
    }
    input.consume(12);
    // xz-file-format 3.1.3: 0, then 4, 8, 16, 32, 64 bytes by threes.
    Ok(match flags1 & 0x0f {
        0 => 0,
        n => 4 << ((n - 1) / 3),
    })
}

/// A multibyte integer (xz-file-format 1.2) from `data` at `at`.
fn varint(data: &[u8], at: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..9 {
        let b = *data.get(*at)?;
        *at += 1;
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return (i == 0 || b != 0).then_some(value);
        }
    }
    None
}

/// The dictionary size the block header `header` (size byte included)
/// asks for: LZMA2's, bounded by the block's uncompressed size when given.
fn block_dictionary(header: &[u8]) -> io::Result<u64> {
    let corrupt = || damaged("xz", "corrupt block header");
    let flags = *header.get(1).ok_or_else(corrupt)?;
    if flags & 0x3c != 0 {
        return Err(corrupt());
    }
    // The header's last four bytes are its CRC-32.
    let body = header
        .get(..header.len().saturating_sub(4))
        .ok_or_else(corrupt)?;
    let mut at = 2;
    if flags & 0x40 != 0 {
        varint(body, &mut at).ok_or_else(corrupt)?;
    }
    let uncompressed = if flags & 0x80 != 0 {
        Some(varint(body, &mut at).ok_or_else(corrupt)?)
    } else {
        None
    };
    // The first filter: LZMA2 must be the last, so any other is refused
    // by its name, and LZMA2 followed by more is damage.
    let filters = usize::from(flags & 3) + 1;
    let id = varint(body, &mut at).ok_or_else(corrupt)?;
    let size = varint(body, &mut at).ok_or_else(corrupt)?;
    let size = usize::try_from(size).map_err(|_| corrupt())?;
    let props = body.get(at..at.saturating_add(size)).ok_or_else(corrupt)?;
    if id != LZMA2 {
        return Err(Refused(format!(
            "xz: the {} filter is not supported (only LZMA2 alone is)",
            filter_name(id)
        ))
        .into_io());
    }
    let ([bits], 1) = (props, filters) else {
        return Err(corrupt());
    };
    let bits = u32::from(*bits);
    let dict = match bits {
        0..=39 => u64::from(2 | (bits & 1)) << (bits / 2 + 11),
        40 => u64::from(u32::MAX),
        _ => return Err(corrupt()),
    };
    Ok(match uncompressed {
        Some(size) => dict.min(size.max(4096)),
        None => dict,
    })
}

fn filter_name(id: u64) -> &'static str {
    match id {
        0x03 => "delta",
        0x04 => "x86 BCJ",
        0x05 => "PowerPC BCJ",
        0x06 => "IA-64 BCJ",
        0x07 => "ARM BCJ",
        0x08 => "ARM-Thumb BCJ",
        0x09 => "SPARC BCJ",
        0x0a => "ARM64 BCJ",
        0x0b => "RISC-V BCJ",
        _ => "unknown",
    }
}

/// Skips an index (its indicator byte already read at `start`): the
/// records, the padding to four bytes and the CRC-32.
fn skip_index(input: &mut Input<'_>, start: u64) -> io::Result<()> {
    let ends_early = || damaged("xz", "the data ends early");
    let varint = |input: &mut Input<'_>| -> io::Result<u64> {
        let mut value = 0u64;
        for i in 0..9 {
            let b = input.byte()?.ok_or_else(ends_early)?;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(damaged("xz", "corrupt index"))
    };
    let records = varint(input)?;
    // Each record is two integers of at least a byte: reading them is
    // bounded by the input, whatever `records` says.
    for _ in 0..records {
        varint(input)?;
        varint(input)?;
    }
    let size = input.consumed - start;
    let padding = (4 - size % 4) % 4;
    if !input.skip(padding + 4)? {
        return Err(ends_early());
    }
    Ok(())
}

/// The header of a `.lzma` file when `head` starts with a plausible one,
/// by xz-utils' own checks (`alone_decoder.c`): the properties byte (lc +
/// lp <= 4), a dictionary of 2^n or 2^n + 2^(n-1) bytes, a size unknown or
/// under 256 GiB. `(props, dictionary, size)`.
pub(super) fn lzma_header(head: &[u8]) -> Option<(u8, u32, u64)> {
    let props = *head.first()?;
    let dict = u32::from_le_bytes(head.get(1..5)?.try_into().ok()?);
    let size = u64::from_le_bytes(head.get(5..13)?.try_into().ok()?);
    if props > (4 * 5 + 4) * 9 + 8 {
        return None;
    }
    let (lc, lp) = (props % 9, props / 9 % 5);
    if lc + lp > 4 {
        return None;
    }
    // 2^n or 2^n + 2^(n-1), as xz-utils rounds it.
    let mut round = dict.saturating_sub(1);
    round |= round >> 2;
    round |= round >> 3;
    round |= round >> 4;
    round |= round >> 8;
    round |= round >> 16;
    let round = round.wrapping_add(1);
    if dict < 4096 || round != dict {
        return None;
    }
    if size != u64::MAX && size >= 1 << 38 {
        return None;
    }
    Some((props, dict, size))
}

pub(super) struct Lzma<'a> {
    reader: LzmaAlone<'a>,
    memory: u64,
}

impl<'a> Lzma<'a> {
    pub(super) fn new(mut input: Input<'a>, limit: u64) -> io::Result<Lzma<'a>> {
        let head = input.peek(13)?;
        let Some((props, dict, size)) = lzma_header(head) else {
            return Err(damaged("lzma", "not an lzma header"));
        };
        input.consume(13);
        // No more of a dictionary is held than the data's size.
        let held = match size {
            u64::MAX => u64::from(dict),
            size => u64::from(dict).min(size.max(4096)),
        };
        // The literal probabilities: 0x300 << (lc + lp) of 2 bytes.
        let lc_lp = u32::from(props % 45 % 9) + u32::from(props % 45 / 9);
        let need = INPUT_BUF as u64 + held + (0x600u64 << lc_lp.min(12)) + MODEL_FIXED;
        check_memory("lzma", held, need, limit)?;
        let reader = LzmaAlone::new(input, props, dict, size)?;
        Ok(Lzma {
            reader,
            memory: need,
        })
    }

    pub(super) fn memory(&self) -> u64 {
        self.memory
    }

    pub(super) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::super::tests::{decode, decode_err, hostile, sample, tool};
    use super::super::{open, refused, Codec};

    #[test]
    fn xz_round_trips_with_every_check_and_concatenated_streams() {
        let text = sample(30, 400_000);
        for args in [
            &["-c", "-1"][..],
            &["-c", "-6", "-C", "crc32"],
            &["-c", "-0", "-C", "none"],
            &["-c", "-C", "sha256"],
            &["-c", "-T2", "--block-size=100000"],
        ] {
            let data = tool("xz", args, &text);
            let out = decode(Codec::Xz, &data, 16 << 20).unwrap();
            assert!(out == text, "{args:?}: {} bytes", out.len());
        }
        let mut many = tool("xz", &["-c"], b"one\n");
        many.extend([0u8; 8]);
        many.extend(tool("xz", &["-c"], b""));
        many.extend(tool("xz", &["-c", "-9"], &text));
        many.extend(b"trailing");
        let mut want = b"one\n".to_vec();
        want.extend(&text);
        assert_eq!(decode(Codec::Xz, &many, 80 << 20).unwrap(), want);
    }

    #[test]
    fn a_dictionary_over_the_limit_or_a_bcj_filter_is_refused() {
        let text = sample(31, 100_000);
        // -9: 64 MiB, but the block's size is in its header (-T2): the
        // dictionary needs no more than the data.
        let mt = tool("xz", &["-c", "-9", "-T2"], &text);
        assert_eq!(decode(Codec::Xz, &mt, 1 << 20).unwrap(), text);
        let st = tool("xz", &["-c", "-9", "-T1"], &text);
        let r = open(Codec::Xz, Box::new(&st[..]), 16 << 20).unwrap_err();
        assert!(r.0.starts_with("xz: ") && r.0.contains("65 MiB"), "{r}");
        // A 128 MiB dictionary (xz would need 1.3 GB to write one): the
        // block header's LZMA2 property byte set to 30 (no sizes: -T1).
        let mut huge = tool("xz", &["-c", "-1", "-T1"], &text);
        assert_eq!(huge[14..16], [0x21, 0x01]);
        huge[16] = 30;
        let r = open(Codec::Xz, Box::new(&huge[..]), 1 << 30).unwrap_err();
        assert!(r.0.contains("over the 64 MiB"), "{r}");
        let bcj = tool("xz", &["-c", "--x86", "--lzma2"], &text);
        let r = open(Codec::Xz, Box::new(&bcj[..]), 1 << 30).unwrap_err();
        assert!(r.0.contains("x86 BCJ filter"), "{r}");
        // A later stream over the limit: an error holding the refusal.
        let mut both = tool("xz", &["-c", "-1"], &text);
        both.extend(&st);
        let e = decode_err(Codec::Xz, &both, 16 << 20);
        assert!(refused(&e).is_some(), "{e}");
    }

    #[test]
    fn damaged_xz_and_lzma_are_errors_never_panics() {
        let text = sample(32, 30_000);
        let xz = tool("xz", &["-c", "-1"], &text);
        let e = decode_err(Codec::Xz, &xz[..xz.len() - 30], 16 << 20);
        assert!(e.to_string().starts_with("xz: "), "{e}");
        hostile(Codec::Xz, &xz, 6);
        hostile(
            Codec::Xz,
            &tool("xz", &["-c", "-0", "-T2", "--block-size=5000"], &text),
            7,
        );
        let lzma = tool("lzma", &["-c"], &text);
        hostile(Codec::Lzma, &lzma, 8);
    }

    #[test]
    fn lzma_round_trips_and_its_dictionary_is_bounded() {
        let text = sample(33, 300_000);
        let data = tool("lzma", &["-c", "-1"], &text);
        assert_eq!(decode(Codec::Lzma, &data, 16 << 20).unwrap(), text);
        // From a pipe the size is unknown (the end marker ends the data):
        // -9's 64 MiB dictionary is held whole.
        let piped = tool("xz", &["--format=lzma", "-c", "-9"], &text);
        let r = open(Codec::Lzma, Box::new(&piped[..]), 16 << 20).unwrap_err();
        assert!(r.0.starts_with("lzma: "), "{r}");
        assert_eq!(decode(Codec::Lzma, &piped, 80 << 20).unwrap(), text);
    }

    /// The 156 KB `.tar.xz` that peaked at 2.1 GB: one block, its data
    /// far larger than its dictionary. 200 MiB of zeros by `xz -1 -T1`
    /// (a 1 MiB dictionary) is decoded holding a few MiB.
    #[test]
    fn a_single_block_xz_is_decoded_in_its_dictionary() {
        let data = tool(
            "sh",
            &["-c", "head -c 209715200 /dev/zero | xz -c -1 -T1"],
            b"",
        );
        assert!(data.len() < 200_000, "{}", data.len());
        let mut d = open(Codec::Xz, Box::new(&data[..]), 16 << 20).unwrap();
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0u64;
        loop {
            let n = d.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            assert!(buf[..n].iter().all(|&b| b == 0));
            total += n as u64;
        }
        assert_eq!(total, 200 << 20);
        assert!(d.memory() < 16 << 20, "{}", d.memory());
        assert!(d.memory() >= 1 << 20, "{}", d.memory());
    }
}
