//! git's delta format (gitformat-pack, "Deltified representation"): the
//! base's size and the result's size as little-endian base-128 varints,
//! then instructions: `1xxxxxxx` copies a range of the base (offset and
//! size bytes present by the low 7 bits; a size of 0 means 0x10000),
//! `0nnnnnnn` (n >= 1) inserts the next n bytes, `00000000` is reserved.
//!
//! The result is allocated once, at the size the delta declares, only
//! when that size is within the caller's cap; every copy and insert is
//! checked against the base and the result before it is made, and the
//! result must come out exactly as long as declared.

use std::io;

fn damaged(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("git delta: {what}"))
}

/// Reads one size varint at `*at` (at most 10 bytes, no overflow).
fn varint(delta: &[u8], at: &mut usize) -> io::Result<u64> {
    let mut value = 0u64;
    for shift in (0..70).step_by(7) {
        let byte = *delta
            .get(*at)
            .ok_or_else(|| damaged("the header ends early"))?;
        *at += 1;
        let bits = u64::from(byte & 0x7f);
        if shift > 63 || (shift == 63 && bits > 1) {
            return Err(damaged("a size is too large"));
        }
        value |= bits << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(damaged("a size is too large"))
}

/// The base size and result size a delta declares, and where its
/// instructions start.
pub(super) fn sizes(delta: &[u8]) -> io::Result<(u64, u64, usize)> {
    let mut at = 0;
    let base = varint(delta, &mut at)?;
    let result = varint(delta, &mut at)?;
    Ok((base, result, at))
}

/// Applies `delta` to `base`; `Err` when the result would be over `cap`
/// bytes or the delta does not fit its base.
pub(super) fn apply(base: &[u8], delta: &[u8], cap: u64) -> io::Result<Vec<u8>> {
    let (base_size, result_size, mut at) = sizes(delta)?;
    if base_size != base.len() as u64 {
        return Err(damaged("the base is not the size the delta expects"));
    }
    if result_size > cap {
        return Err(damaged("the result is over the object size cap"));
    }
    let result_len = usize::try_from(result_size)
        .map_err(|_| damaged("the result is over the object size cap"))?;
    let mut out = Vec::with_capacity(result_len);
    while let Some(&op) = delta.get(at) {
        at += 1;
        if op & 0x80 != 0 {
            let mut offset = 0u64;
            for (i, bit) in [0x01u8, 0x02, 0x04, 0x08].into_iter().enumerate() {
                if op & bit != 0 {
                    let b = *delta.get(at).ok_or_else(|| damaged("a copy ends early"))?;
                    at += 1;
                    offset |= u64::from(b) << (8 * i);
                }
            }
            let mut size = 0u64;
            for (i, bit) in [0x10u8, 0x20, 0x40].into_iter().enumerate() {
                if op & bit != 0 {
                    let b = *delta.get(at).ok_or_else(|| damaged("a copy ends early"))?;
                    at += 1;
                    size |= u64::from(b) << (8 * i);
                }
            }
            if size == 0 {
                size = 0x10000;
            }
            let range = usize::try_from(offset)
                .ok()
                .zip(usize::try_from(size).ok())
                .and_then(|(o, s)| Some(o..o.checked_add(s)?))
                .and_then(|r| base.get(r))
                .ok_or_else(|| damaged("a copy reaches past the base"))?;
            if range.len() > result_len - out.len() {
                return Err(damaged("the result is longer than declared"));
            }
            out.extend_from_slice(range);
        } else if op != 0 {
            let n = usize::from(op);
            let bytes = delta
                .get(at..at + n)
                .ok_or_else(|| damaged("an insert ends early"))?;
            at += n;
            if n > result_len - out.len() {
                return Err(damaged("the result is longer than declared"));
            }
            out.extend_from_slice(bytes);
        } else {
            return Err(damaged("a reserved instruction"));
        }
    }
    if out.len() != result_len {
        return Err(damaged("the result is shorter than declared"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_and_inserts_are_applied_and_checked() {
        let base = b"0123456789abcdef";
        // base 16, result 10: copy 4 bytes at 10, insert "xyz", copy 3 at 0.
        let delta = [16, 10, 0x91, 10, 4, 3, b'x', b'y', b'z', 0x90, 3];
        assert_eq!(apply(base, &delta, 100).unwrap(), b"abcdxyz012");
        // Declared sizes that do not hold.
        assert!(apply(base, &[15, 10, 0x91, 10, 4], 100).is_err());
        assert!(apply(base, &delta, 9).is_err());
        let mut short = delta;
        short[1] = 11;
        assert!(apply(base, &short, 100).is_err());
        short[1] = 9;
        assert!(apply(base, &short, 100).is_err());
        // A copy past the base, a reserved opcode, a cut insert.
        assert!(apply(base, &[16, 4, 0x91, 14, 4], 100).is_err());
        assert!(apply(base, &[16, 4, 0], 100).is_err());
        assert!(apply(base, &[16, 4, 4, b'a'], 100).is_err());
        // Size 0 is 0x10000, which a 16-byte base does not have.
        assert!(apply(base, &[16, 4, 0x80], 100).is_err());
        // Varints: an endless one, one over 64 bits.
        assert!(sizes(&[0xff; 20]).is_err());
        assert!(sizes(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]).is_err());
        assert_eq!(
            sizes(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0]).unwrap(),
            (u64::MAX, 0, 11)
        );
    }
}
