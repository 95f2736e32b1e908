//! LZMA and LZMA2, decoded by hand: the range decoder, the LZMA model and
//! a ring-buffer dictionary, after the public-domain description in
//! xz-embedded and the LZMA SDK. A hostile stream is an error, never a
//! panic: every byte the range decoder takes comes through a bounded
//! source (an LZMA2 chunk's compressed size, the input's end), every
//! distance is checked against what the dictionary holds, and every index
//! is in range by construction (`usize` masks and checked gets).
//!
//! lzma-rust2 0.2.2 (the last that builds with Rust 1.75) reads past an
//! LZMA2 chunk's buffer on hostile data (an index out of bounds: a panic,
//! so an abort in the release build; found by `fuzz/fuzz_targets/
//! audit_scan.rs`): this replaces it.

use std::io;

use super::input::{damaged, Input};

const STATES: usize = 12;
const POS_STATES_MAX: usize = 16;
const LITERAL_CODER_SIZE: usize = 0x300;
const DIST_STATES: usize = 4;
const DIST_SLOTS: usize = 64;
const DIST_MODEL_START: u32 = 4;
const DIST_MODEL_END: u32 = 14;
const FULL_DISTANCES: usize = 128;
const ALIGN_BITS: u32 = 4;
const MATCH_LEN_MIN: u32 = 2;
const PROB_INIT: u16 = 1024;

/// Memory of the model besides the dictionary and its literal
/// probabilities, in bytes (rounded up; the callers count it).
pub(super) const MODEL_FIXED: u64 = 32 * 1024;

/// Where the range decoder takes its bytes: the input, at most `left`
/// of them (an LZMA2 chunk), `None` for no bound but the input's end.
struct Source<'i, 'a> {
    input: &'i mut Input<'a>,
    left: Option<&'i mut u32>,
    format: &'static str,
}

impl Source<'_, '_> {
    fn byte(&mut self) -> io::Result<u8> {
        if let Some(left) = self.left.as_deref_mut() {
            if *left == 0 {
                return Err(damaged(
                    self.format,
                    "corrupt data (a chunk read past its end)",
                ));
            }
            *left -= 1;
        }
        match self.input.byte()? {
            Some(b) => Ok(b),
            None => Err(damaged(self.format, "the data ends early")),
        }
    }
}

#[derive(Debug, Default)]
struct Range {
    range: u32,
    code: u32,
}

impl Range {
    fn init(&mut self, src: &mut Source<'_, '_>) -> io::Result<()> {
        if src.byte()? != 0 {
            return Err(damaged(src.format, "corrupt data (range coder)"));
        }
        let mut code = 0u32;
        for _ in 0..4 {
            code = (code << 8) | u32::from(src.byte()?);
        }
        self.code = code;
        self.range = u32::MAX;
        Ok(())
    }

    #[inline]
    fn normalize(&mut self, src: &mut Source<'_, '_>) -> io::Result<()> {
        if self.range < 1 << 24 {
            self.range <<= 8;
            self.code = (self.code << 8) | u32::from(src.byte()?);
        }
        Ok(())
    }

    #[inline]
    fn bit(&mut self, prob: &mut u16, src: &mut Source<'_, '_>) -> io::Result<u32> {
        self.normalize(src)?;
        let bound = (self.range >> 11) * u32::from(*prob);
        if self.code < bound {
            self.range = bound;
            *prob += (2048 - *prob) >> 5;
            Ok(0)
        } else {
            self.range -= bound;
            self.code -= bound;
            *prob -= *prob >> 5;
            Ok(1)
        }
    }

    /// A bit tree of `probs` (index 1 up), `limit` a power of two: the
    /// symbol, `limit` up.
    fn tree(&mut self, probs: &mut [u16], limit: u32, src: &mut Source<'_, '_>) -> io::Result<u32> {
        let mut symbol = 1u32;
        while symbol < limit {
            let b = match probs.get_mut(symbol as usize) {
                Some(p) => self.bit(p, src)?,
                None => return Err(damaged(src.format, "corrupt data")),
            };
            symbol = (symbol << 1) | b;
        }
        Ok(symbol)
    }

    /// A reverse bit tree of `bits` bits, added to `dest`; `probs[0]` is
    /// the tree's node 1.
    fn reverse(
        &mut self,
        probs: &mut [u16],
        bits: u32,
        dest: &mut u32,
        src: &mut Source<'_, '_>,
    ) -> io::Result<()> {
        let mut symbol = 1u32;
        for i in 0..bits {
            let b = match probs.get_mut(symbol as usize - 1) {
                Some(p) => self.bit(p, src)?,
                None => return Err(damaged(src.format, "corrupt data")),
            };
            symbol = (symbol << 1) | b;
            *dest = dest.wrapping_add(b << i);
        }
        Ok(())
    }

    fn direct(&mut self, bits: u32, dest: &mut u32, src: &mut Source<'_, '_>) -> io::Result<()> {
        for _ in 0..bits {
            self.normalize(src)?;
            self.range >>= 1;
            self.code = self.code.wrapping_sub(self.range);
            let mask = 0u32.wrapping_sub(self.code >> 31);
            self.code = self.code.wrapping_add(self.range & mask);
            *dest = (*dest << 1).wrapping_add(mask.wrapping_add(1));
        }
        Ok(())
    }

    fn finished(&self) -> bool {
        self.code == 0
    }
}

#[derive(Debug, Clone)]
struct LenDec {
    choice: u16,
    choice2: u16,
    low: [[u16; 8]; POS_STATES_MAX],
    mid: [[u16; 8]; POS_STATES_MAX],
    high: [u16; 256],
}

impl LenDec {
    fn new() -> LenDec {
        LenDec {
            choice: PROB_INIT,
            choice2: PROB_INIT,
            low: [[PROB_INIT; 8]; POS_STATES_MAX],
            mid: [[PROB_INIT; 8]; POS_STATES_MAX],
            high: [PROB_INIT; 256],
        }
    }

    fn decode(
        &mut self,
        rc: &mut Range,
        pos_state: usize,
        src: &mut Source<'_, '_>,
    ) -> io::Result<u32> {
        let ps = pos_state & (POS_STATES_MAX - 1);
        if rc.bit(&mut self.choice, src)? == 0 {
            Ok(MATCH_LEN_MIN + rc.tree(&mut self.low[ps], 8, src)? - 8)
        } else if rc.bit(&mut self.choice2, src)? == 0 {
            Ok(MATCH_LEN_MIN + 8 + rc.tree(&mut self.mid[ps], 8, src)? - 8)
        } else {
            Ok(MATCH_LEN_MIN + 16 + rc.tree(&mut self.high, 256, src)? - 256)
        }
    }
}

/// The dictionary: a ring of `size` bytes, the last ones decoded.
struct Dict {
    buf: Vec<u8>,
    size: usize,
    pos: usize,
    /// How many bytes of `buf` hold data (up to `size`).
    full: usize,
    /// Bytes decoded in all (positions for the model's bit masks).
    total: u64,
}

impl Dict {
    fn new(size: usize) -> Dict {
        Dict {
            // Grows as data comes (a small file never allocates a large
            // dictionary), never past `size`.
            buf: Vec::new(),
            size: size.max(1),
            pos: 0,
            full: 0,
            total: 0,
        }
    }

    fn reset(&mut self) {
        self.pos = 0;
        self.full = 0;
        self.total = 0;
    }

    /// The byte `dist + 1` back, 0 when there is none.
    fn get(&self, dist: u32) -> u8 {
        let dist = dist as usize;
        if dist >= self.full {
            return 0;
        }
        let at = if dist < self.pos {
            self.pos - dist - 1
        } else {
            self.size - (dist - self.pos) - 1
        };
        self.buf.get(at).copied().unwrap_or(0)
    }

    fn put(&mut self, b: u8) {
        if self.pos < self.buf.len() {
            self.buf[self.pos] = b;
        } else {
            self.buf.push(b);
        }
        self.pos += 1;
        if self.pos == self.size {
            self.pos = 0;
        }
        if self.full < self.size {
            self.full += 1;
        }
        self.total += 1;
    }
}

/// The LZMA model and its state between reads.
pub(super) struct Model {
    lc: u32,
    lp: u32,
    pb: u32,
    literal: Vec<u16>,
    is_match: [[u16; POS_STATES_MAX]; STATES],
    is_rep: [u16; STATES],
    is_rep0: [u16; STATES],
    is_rep1: [u16; STATES],
    is_rep2: [u16; STATES],
    is_rep0_long: [[u16; POS_STATES_MAX]; STATES],
    dist_slot: [[u16; DIST_SLOTS]; DIST_STATES],
    dist_special: [u16; FULL_DISTANCES - DIST_MODEL_END as usize],
    dist_align: [u16; 1 << ALIGN_BITS],
    match_len: LenDec,
    rep_len: LenDec,
    state: usize,
    reps: [u32; 4],
    /// Bytes of a match still to copy (the caller's buffer was full).
    pending: u32,
    rc: Range,
    dict: Dict,
    /// The end-of-stream marker was read (.lzma).
    ended: bool,
}

impl Model {
    fn new(dict_size: usize) -> Model {
        Model {
            lc: 0,
            lp: 0,
            pb: 0,
            literal: Vec::new(),
            is_match: [[PROB_INIT; POS_STATES_MAX]; STATES],
            is_rep: [PROB_INIT; STATES],
            is_rep0: [PROB_INIT; STATES],
            is_rep1: [PROB_INIT; STATES],
            is_rep2: [PROB_INIT; STATES],
            is_rep0_long: [[PROB_INIT; POS_STATES_MAX]; STATES],
            dist_slot: [[PROB_INIT; DIST_SLOTS]; DIST_STATES],
            dist_special: [PROB_INIT; FULL_DISTANCES - DIST_MODEL_END as usize],
            dist_align: [PROB_INIT; 1 << ALIGN_BITS],
            match_len: LenDec::new(),
            rep_len: LenDec::new(),
            state: 0,
            reps: [0; 4],
            pending: 0,
            rc: Range::default(),
            dict: Dict::new(dict_size),
            ended: false,
        }
    }

    /// Sets lc, lp, pb (checked by the caller) and resets the state.
    fn set_props(&mut self, lc: u32, lp: u32, pb: u32) {
        self.lc = lc;
        self.lp = lp;
        self.pb = pb;
        let len = LITERAL_CODER_SIZE << (lc + lp);
        self.literal.clear();
        self.literal.resize(len, PROB_INIT);
        self.reset_state();
    }

    fn reset_state(&mut self) {
        self.literal.iter_mut().for_each(|p| *p = PROB_INIT);
        self.is_match = [[PROB_INIT; POS_STATES_MAX]; STATES];
        self.is_rep = [PROB_INIT; STATES];
        self.is_rep0 = [PROB_INIT; STATES];
        self.is_rep1 = [PROB_INIT; STATES];
        self.is_rep2 = [PROB_INIT; STATES];
        self.is_rep0_long = [[PROB_INIT; POS_STATES_MAX]; STATES];
        self.dist_slot = [[PROB_INIT; DIST_SLOTS]; DIST_STATES];
        self.dist_special = [PROB_INIT; FULL_DISTANCES - DIST_MODEL_END as usize];
        self.dist_align = [PROB_INIT; 1 << ALIGN_BITS];
        self.match_len = LenDec::new();
        self.rep_len = LenDec::new();
        self.state = 0;
        self.reps = [0; 4];
        self.pending = 0;
    }

    /// Copies what is left of a match into `out` from `*n`.
    fn copy_pending(&mut self, out: &mut [u8], n: &mut usize, limit: usize) {
        let dist = self.reps[0];
        while self.pending > 0 && *n < limit {
            let b = self.dict.get(dist);
            self.dict.put(b);
            out[*n] = b;
            *n += 1;
            self.pending -= 1;
        }
    }

    /// Decodes into `out[*n..limit]`; stops there, at the end marker, or
    /// with an error.
    fn decode(
        &mut self,
        out: &mut [u8],
        n: &mut usize,
        limit: usize,
        src: &mut Source<'_, '_>,
    ) -> io::Result<()> {
        let limit = limit.min(out.len());
        self.copy_pending(out, n, limit);
        let pos_mask = (1u64 << self.pb) - 1;
        let lp_mask = (1u64 << self.lp) - 1;
        while *n < limit && !self.ended {
            let pos_state = (self.dict.total & pos_mask) as usize;
            let state = self.state;
            if self.rc.bit(&mut self.is_match[state][pos_state], src)? == 0 {
                let b = self.literal(lp_mask, src)?;
                self.dict.put(b);
                out[*n] = b;
                *n += 1;
                self.state = match state {
                    0..=3 => 0,
                    4..=9 => state - 3,
                    _ => state - 6,
                };
                continue;
            }
            let len = if self.rc.bit(&mut self.is_rep[state], src)? == 0 {
                self.state = if state < 7 { 7 } else { 10 };
                self.reps = [0, self.reps[0], self.reps[1], self.reps[2]];
                let len = self.match_len.decode(&mut self.rc, pos_state, src)?;
                let dist = self.distance(len, src)?;
                if dist == u32::MAX {
                    // The end-of-stream marker (.lzma).
                    self.ended = true;
                    return Ok(());
                }
                self.reps[0] = dist;
                len
            } else {
                self.rep(state, pos_state, src)?
            };
            if self.reps[0] as usize >= self.dict.full {
                return Err(damaged(
                    src.format,
                    "corrupt data (a distance past the data)",
                ));
            }
            self.pending = len;
            self.copy_pending(out, n, limit);
        }
        // Normalized between calls (as xz-embedded keeps it): at the end
        // of an LZMA2 chunk its last byte is then taken.
        if !self.ended {
            self.rc.normalize(src)?;
        }
        Ok(())
    }

    fn literal(&mut self, lp_mask: u64, src: &mut Source<'_, '_>) -> io::Result<u8> {
        let prev = u32::from(self.dict.get(0));
        let low = if self.lc == 0 {
            0
        } else {
            prev >> (8 - self.lc)
        };
        let high = ((self.dict.total & lp_mask) as u32) << self.lc;
        let base = (low + high) as usize * LITERAL_CODER_SIZE;
        let Some(probs) = self.literal.get_mut(base..base + LITERAL_CODER_SIZE) else {
            return Err(damaged(src.format, "corrupt data"));
        };
        let symbol = if self.state < 7 {
            self.rc.tree(probs, 0x100, src)?
        } else {
            let mut match_byte = u32::from(self.dict.get(self.reps[0])) << 1;
            let mut offset = 0x100u32;
            let mut symbol = 1u32;
            while symbol < 0x100 {
                let match_bit = match_byte & offset;
                match_byte <<= 1;
                let i = (offset + match_bit + symbol) as usize;
                let Some(p) = probs.get_mut(i) else {
                    return Err(damaged(src.format, "corrupt data"));
                };
                if self.rc.bit(p, src)? == 1 {
                    symbol = (symbol << 1) | 1;
                    offset &= match_bit;
                } else {
                    symbol <<= 1;
                    offset &= !match_bit;
                }
            }
            symbol
        };
        Ok((symbol & 0xff) as u8)
    }

    /// A match's distance (rep0), after its length.
    fn distance(&mut self, len: u32, src: &mut Source<'_, '_>) -> io::Result<u32> {
        let dist_state = (len - MATCH_LEN_MIN).min(DIST_STATES as u32 - 1) as usize;
        let slot = self
            .rc
            .tree(&mut self.dist_slot[dist_state], DIST_SLOTS as u32, src)?
            - DIST_SLOTS as u32;
        if slot < DIST_MODEL_START {
            return Ok(slot);
        }
        let bits = (slot >> 1) - 1;
        let mut dist = (2 | (slot & 1)) << bits;
        if slot < DIST_MODEL_END {
            // Node 1 of this slot's tree is dist_special[dist - slot].
            let base = (dist - slot) as usize;
            let Some(probs) = self.dist_special.get_mut(base..) else {
                return Err(damaged(src.format, "corrupt data"));
            };
            self.rc.reverse(probs, bits, &mut dist, src)?;
        } else {
            let mut high = 0u32;
            self.rc.direct(bits - ALIGN_BITS, &mut high, src)?;
            dist = dist.wrapping_add(high << ALIGN_BITS);
            self.rc
                .reverse(&mut self.dist_align[1..], ALIGN_BITS, &mut dist, src)?;
        }
        Ok(dist)
    }

    /// A repeated match: its length; the distance in `reps[0]`.
    fn rep(&mut self, state: usize, pos_state: usize, src: &mut Source<'_, '_>) -> io::Result<u32> {
        if self.rc.bit(&mut self.is_rep0[state], src)? == 0 {
            if self.rc.bit(&mut self.is_rep0_long[state][pos_state], src)? == 0 {
                self.state = if state < 7 { 9 } else { 11 };
                return Ok(1);
            }
        } else {
            let dist;
            if self.rc.bit(&mut self.is_rep1[state], src)? == 0 {
                dist = self.reps[1];
            } else {
                if self.rc.bit(&mut self.is_rep2[state], src)? == 0 {
                    dist = self.reps[2];
                } else {
                    dist = self.reps[3];
                    self.reps[3] = self.reps[2];
                }
                self.reps[2] = self.reps[1];
            }
            self.reps[1] = self.reps[0];
            self.reps[0] = dist;
        }
        self.state = if state < 7 { 8 } else { 11 };
        self.rep_len.decode(&mut self.rc, pos_state, src)
    }
}

/// lc, lp, pb from an LZMA properties byte.
pub(super) fn props(byte: u8) -> Option<(u32, u32, u32)> {
    if byte > (4 * 5 + 4) * 9 + 8 {
        return None;
    }
    let byte = u32::from(byte);
    let pb = byte / 45;
    let rest = byte % 45;
    Some((rest % 9, rest / 9, pb))
}

/// An LZMA2 stream (an xz block's data), read until its end byte.
pub(super) struct Lzma2<'a> {
    input: Input<'a>,
    model: Model,
    /// Bytes left of the current chunk: output, and compressed input.
    out_left: u32,
    in_left: u32,
    lzma_chunk: bool,
    need_dict_reset: bool,
    need_props: bool,
    end: bool,
}

impl<'a> Lzma2<'a> {
    pub(super) fn new(input: Input<'a>, dict_size: u32) -> Lzma2<'a> {
        Lzma2 {
            input,
            model: Model::new(dict_size.max(4096) as usize),
            out_left: 0,
            in_left: 0,
            lzma_chunk: false,
            need_dict_reset: true,
            need_props: true,
            end: false,
        }
    }

    pub(super) fn into_inner(self) -> Input<'a> {
        self.input
    }

    fn header_byte(&mut self) -> io::Result<u8> {
        match self.input.byte()? {
            Some(b) => Ok(b),
            None => Err(damaged("xz", "the data ends early")),
        }
    }

    fn header_u16(&mut self) -> io::Result<u32> {
        let hi = self.header_byte()?;
        let lo = self.header_byte()?;
        Ok(u32::from(u16::from_be_bytes([hi, lo])))
    }

    /// Reads the next chunk's header; false at the stream's end.
    fn chunk(&mut self) -> io::Result<bool> {
        let control = self.header_byte()?;
        if control == 0 {
            self.end = true;
            return Ok(false);
        }
        if control >= 0xe0 || control == 0x01 {
            self.need_props = true;
            self.need_dict_reset = false;
            self.model.dict.reset();
        } else if self.need_dict_reset {
            return Err(damaged(
                "xz",
                "corrupt data (LZMA2 without a dictionary reset)",
            ));
        }
        if control >= 0x80 {
            self.lzma_chunk = true;
            self.out_left = (u32::from(control & 0x1f) << 16) + self.header_u16()? + 1;
            self.in_left = self.header_u16()? + 1;
            if control >= 0xc0 {
                let Some((lc, lp, pb)) = props(self.header_byte()?) else {
                    return Err(damaged("xz", "corrupt data (LZMA2 properties)"));
                };
                if lc + lp > 4 {
                    return Err(damaged("xz", "corrupt data (LZMA2 properties)"));
                }
                self.need_props = false;
                self.model.set_props(lc, lp, pb);
            } else if self.need_props {
                return Err(damaged("xz", "corrupt data (LZMA2 without properties)"));
            } else if control >= 0xa0 {
                self.model.reset_state();
            }
            if self.in_left < 5 {
                return Err(damaged("xz", "corrupt data (LZMA2 chunk)"));
            }
            let mut src = Source {
                input: &mut self.input,
                left: Some(&mut self.in_left),
                format: "xz",
            };
            self.model.rc.init(&mut src)?;
        } else if control > 0x02 {
            return Err(damaged("xz", "corrupt data (LZMA2 control byte)"));
        } else {
            self.lzma_chunk = false;
            self.out_left = self.header_u16()? + 1;
        }
        Ok(true)
    }

    pub(super) fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < out.len() && !self.end {
            if self.out_left == 0 && !self.chunk()? {
                break;
            }
            let want = (out.len() - n).min(self.out_left as usize);
            let before = n;
            if self.lzma_chunk {
                let mut src = Source {
                    input: &mut self.input,
                    left: Some(&mut self.in_left),
                    format: "xz",
                };
                self.model.decode(out, &mut n, before + want, &mut src)?;
                if self.model.ended {
                    return Err(damaged("xz", "corrupt data (an end marker in LZMA2)"));
                }
            } else {
                while n < before + want {
                    let Some(b) = self.input.byte()? else {
                        return Err(damaged("xz", "the data ends early"));
                    };
                    self.model.dict.put(b);
                    out[n] = b;
                    n += 1;
                }
            }
            self.out_left -= (n - before) as u32;
            if self.out_left == 0
                && self.lzma_chunk
                && (self.in_left != 0 || self.model.pending != 0 || !self.model.rc.finished())
            {
                return Err(damaged(
                    "xz",
                    "corrupt data (an LZMA2 chunk of the wrong size)",
                ));
            }
        }
        Ok(n)
    }
}

/// A `.lzma` (LZMA alone) stream after its 13-byte header.
pub(super) struct LzmaAlone<'a> {
    input: Input<'a>,
    model: Model,
    /// Bytes still to come, when the header says.
    left: Option<u64>,
    started: bool,
}

impl<'a> LzmaAlone<'a> {
    /// `props` checked by the caller's header check; `size` u64::MAX for
    /// unknown (then an end marker ends it).
    pub(super) fn new(input: Input<'a>, props_byte: u8, dict: u32, size: u64) -> io::Result<Self> {
        let Some((lc, lp, pb)) = props(props_byte) else {
            return Err(damaged("lzma", "corrupt header"));
        };
        let held = match size {
            u64::MAX => dict,
            size => u32::try_from(size).unwrap_or(u32::MAX).min(dict),
        };
        let mut model = Model::new(held.max(4096) as usize);
        model.set_props(lc, lp, pb);
        Ok(LzmaAlone {
            input,
            model,
            left: (size != u64::MAX).then_some(size),
            started: false,
        })
    }

    pub(super) fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut src = Source {
            input: &mut self.input,
            left: None,
            format: "lzma",
        };
        if !self.started {
            self.started = true;
            self.model.rc.init(&mut src)?;
        }
        if self.model.ended || self.left == Some(0) {
            return Ok(0);
        }
        let limit = match self.left {
            Some(left) => usize::try_from(left).unwrap_or(usize::MAX).min(out.len()),
            None => out.len(),
        };
        let mut n = 0;
        self.model.decode(out, &mut n, limit, &mut src)?;
        if let Some(left) = self.left.as_mut() {
            *left -= n as u64;
        }
        Ok(n)
    }
}
