//! A GVariant reader for exactly the shapes OSTree's objects use: tuples,
//! arrays of fixed-size and of variable-size elements, strings and
//! big-endian integers (ostree's convention; GVariant's own framing
//! offsets are little-endian). Serialisation as GLib's `gvariant-serialiser.c`
//! writes it: each member aligned to its type's alignment from the
//! container's start; a tuple's variable-size members but the last end at
//! a framing offset stored at the tuple's end, last member first; an array
//! of variable-size elements ends with the table of each element's end.
//! Offsets are 1, 2, 4 or 8 bytes wide by the container's size.
//!
//! GLib reads a damaged GVariant as default values ("non-normal form") and
//! had bugs doing so (CVE-2023-29499, quadratic offset-table walks); here
//! every offset is checked against the container (start <= end <= where the
//! framing begins) and anything out of place is an `Err`, never a panic:
//! a slice is only taken with `get`, all arithmetic is checked, and the work
//! is one pass over the offsets, each read once.

use std::io;

/// How a member type is laid out: its alignment and, when it has one, its
/// fixed size.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ty {
    align: usize,
    fixed: Option<usize>,
}

/// `y`
#[allow(dead_code)] // the shapes are all here, whether or not a reader uses each
pub(crate) const BYTE: Ty = Ty {
    align: 1,
    fixed: Some(1),
};
/// `u`
pub(crate) const U32: Ty = Ty {
    align: 4,
    fixed: Some(4),
};
/// `t`
pub(crate) const U64: Ty = Ty {
    align: 8,
    fixed: Some(8),
};
/// Variable size, alignment 1: `s`, `ay`, `a(say)`, `a(ayay)`, `(ayay)`.
pub(crate) const VAR1: Ty = Ty {
    align: 1,
    fixed: None,
};
/// Variable size, alignment 4: `a(uuu)`.
pub(crate) const VAR4: Ty = Ty {
    align: 4,
    fixed: None,
};
/// Variable size, alignment 8: `a{sv}` (a variant aligns to 8).
pub(crate) const VAR8: Ty = Ty {
    align: 8,
    fixed: None,
};

pub(crate) fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("ostree: {what}"))
}

/// The width of a container's framing offsets (GLib `gvs_get_offset_size`).
fn offset_size(len: usize) -> usize {
    match len as u64 {
        0 => 0,
        1..=0xff => 1,
        0x100..=0xffff => 2,
        0x1_0000..=0xffff_ffff => 4,
        _ => 8,
    }
}

/// The little-endian offset of `size` bytes at `at`.
fn offset(data: &[u8], at: usize, size: usize) -> io::Result<usize> {
    let end = at
        .checked_add(size)
        .ok_or_else(|| bad("framing offset out of range"))?;
    let bytes = data
        .get(at..end)
        .filter(|b| !b.is_empty())
        .ok_or_else(|| bad("framing offset out of range"))?;
    let mut value = 0u64;
    for (i, &b) in bytes.iter().enumerate() {
        value |= u64::from(b) << (8 * i);
    }
    usize::try_from(value).map_err(|_| bad("framing offset out of range"))
}

fn align_up(at: usize, align: usize) -> io::Result<usize> {
    let mask = align.saturating_sub(1);
    at.checked_add(mask)
        .map(|n| n & !mask)
        .ok_or_else(|| bad("member out of range"))
}

/// The members of a tuple whose member types are `members`.
pub(crate) fn tuple<'a, const N: usize>(
    data: &'a [u8],
    members: [Ty; N],
    what: &str,
) -> io::Result<[&'a [u8]; N]> {
    let wrong = || bad(&format!("{what}: framing out of range"));
    let size = offset_size(data.len());
    let mut out: [&[u8]; N] = [&[]; N];
    // Where the framing offsets begin: lowered by each one read.
    let mut frame = data.len();
    let mut pos = 0usize;
    for (i, (ty, slot)) in members.iter().zip(out.iter_mut()).enumerate() {
        let start = align_up(pos, ty.align)?;
        let end = match ty.fixed {
            Some(n) => start.checked_add(n).ok_or_else(wrong)?,
            None if i + 1 == N => frame,
            None => {
                frame = frame
                    .checked_sub(size)
                    .filter(|_| size > 0)
                    .ok_or_else(wrong)?;
                offset(data, frame, size)?
            }
        };
        if start > end || end > frame {
            return Err(wrong());
        }
        *slot = data.get(start..end).ok_or_else(wrong)?;
        pos = end;
    }
    Ok(out)
}

/// The elements of an array of fixed-size elements (`ay`, `a(uuu)`).
#[allow(dead_code)] // the shapes are all here, whether or not a reader uses each
pub(crate) fn fixed_array<'a>(
    data: &'a [u8],
    elem: usize,
    what: &str,
) -> io::Result<std::slice::ChunksExact<'a, u8>> {
    if elem == 0 || data.len() % elem != 0 {
        return Err(bad(&format!("{what}: size not a multiple of its element")));
    }
    Ok(data.chunks_exact(elem))
}

/// The elements of an array of variable-size elements aligned to `align`,
/// at most `max` of them (more is an `Err`).
pub(crate) fn var_array<'a>(
    data: &'a [u8],
    align: usize,
    max: usize,
    what: &str,
) -> io::Result<Vec<&'a [u8]>> {
    if data.is_empty() {
        return Ok(Vec::new());
    }
    let wrong = || bad(&format!("{what}: framing out of range"));
    let size = offset_size(data.len());
    let last = data.len().checked_sub(size).ok_or_else(wrong)?;
    // The end of the last element is where the offset table begins; the
    // table holds at least the offset just read.
    let table = offset(data, last, size)?;
    if table > last {
        return Err(wrong());
    }
    let len = data.len() - table;
    if len % size != 0 {
        return Err(wrong());
    }
    let count = len / size;
    if count > max {
        return Err(bad(&format!("{what}: more than {max} entries")));
    }
    let mut out = Vec::with_capacity(count);
    let mut pos = 0usize;
    for i in 0..count {
        let at = i
            .checked_mul(size)
            .and_then(|n| n.checked_add(table))
            .ok_or_else(wrong)?;
        let end = offset(data, at, size)?;
        let start = align_up(pos, align)?;
        if start > end || end > table {
            return Err(wrong());
        }
        out.push(data.get(start..end).ok_or_else(wrong)?);
        pos = end;
    }
    Ok(out)
}

/// A string's bytes (without its NUL). A string must end in its only NUL.
pub(crate) fn string<'a>(data: &'a [u8], what: &str) -> io::Result<&'a [u8]> {
    match data.split_last() {
        Some((0, text)) if !text.contains(&0) => Ok(text),
        _ => Err(bad(&format!("{what}: not a string"))),
    }
}

pub(crate) fn u32_be(data: &[u8]) -> io::Result<u32> {
    <[u8; 4]>::try_from(data)
        .map(u32::from_be_bytes)
        .map_err(|_| bad("integer of the wrong size"))
}

pub(crate) fn u64_be(data: &[u8]) -> io::Result<u64> {
    <[u8; 8]>::try_from(data)
        .map(u64::from_be_bytes)
        .map_err(|_| bad("integer of the wrong size"))
}

/// A 32-byte checksum stored as `ay`.
pub(crate) fn checksum(data: &[u8], what: &str) -> io::Result<[u8; 32]> {
    <[u8; 32]>::try_from(data).map_err(|_| bad(&format!("{what}: not a 32-byte checksum")))
}

/// An `a(ayay)` (extended attributes): at most `max` pairs.
pub(crate) fn xattrs(data: &[u8], max: usize) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    for pair in var_array(data, 1, max, "xattrs")? {
        let [name, value] = tuple(pair, [VAR1, VAR1], "xattr")?;
        // An xattr name is a C string in ostree: its trailing NUL is kept.
        let name = name.strip_suffix(&[0]).unwrap_or(name);
        out.push((name.to_vec(), value.to_vec()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_widen_with_the_container() {
        assert_eq!(offset_size(0), 0);
        assert_eq!(offset_size(255), 1);
        assert_eq!(offset_size(256), 2);
        assert_eq!(offset_size(65536), 4);
    }

    #[test]
    fn a_tuple_of_strings_and_integers_reads_back() {
        // (sus): "ab\0", pad to 4, u32, "c\0", offset of the first string (3).
        let data = [b'a', b'b', 0, 0, 0, 0, 0, 7, b'c', 0, 3];
        let [s, u, t] = tuple(&data, [VAR1, U32, VAR1], "t").unwrap();
        assert_eq!(string(s, "s").unwrap(), b"ab");
        assert_eq!(u32_be(u).unwrap(), 7);
        assert_eq!(string(t, "s").unwrap(), b"c");
        // An offset past the framing, or before the start, is an error.
        for bad_offset in [0xff, 12, 9] {
            let mut d = data;
            d[10] = bad_offset;
            assert!(tuple(&d, [VAR1, U32, VAR1], "t").is_err(), "{bad_offset}");
        }
        assert!(tuple(&[], [VAR1, VAR1], "t").is_err());
        assert!(tuple(&[0], [U64, VAR1], "t").is_err());
    }

    #[test]
    fn a_variable_array_reads_back_and_rejects_bad_tables() {
        // as: "x\0", "yz\0", offsets 2, 5.
        let data = [b'x', 0, b'y', b'z', 0, 2, 5];
        let items = var_array(&data, 1, 10, "as").unwrap();
        assert_eq!(items, vec![&b"x\0"[..], &b"yz\0"[..]]);
        assert!(var_array(&data, 1, 1, "as").is_err());
        for (at, v) in [(6, 7), (6, 0), (5, 6), (5, 9)] {
            let mut d = data;
            d[at] = v;
            assert!(var_array(&d, 1, 10, "as").is_err(), "{at} {v}");
        }
        assert!(var_array(&[], 1, 10, "as").unwrap().is_empty());
        assert!(string(b"a\0b\0", "s").is_err());
        assert!(string(b"", "s").is_err());
    }
}
