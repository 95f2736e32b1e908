//! The reproducible tar archives `device-certs --format tar` writes: POSIX
//! ustar (POSIX.1-2001 `pax` without extended headers), built in memory,
//! byte for byte the same for the same content: entries sorted by path
//! (folders as given, each before what it holds), every time
//! `SOURCE_DATE_EPOCH`, uid and gid 0 with owner names `root`, the exact
//! modes given, no device numbers, two zero blocks at the end.

use crate::error::{Error, Result};

const BLOCK: usize = 512;

/// One entry: a folder (no contents) or a regular file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry<'a> {
    Dir {
        path: &'a str,
        mode: u32,
    },
    File {
        path: &'a str,
        mode: u32,
        bytes: &'a [u8],
    },
}

impl Entry<'_> {
    fn path(&self) -> &str {
        match self {
            Entry::Dir { path, .. } | Entry::File { path, .. } => path,
        }
    }
}

/// Builds the archive. Paths are relative, `/`-separated, without a
/// trailing `/`; each must fit ustar's name (100 bytes) and prefix (155).
pub fn build(entries: &[Entry<'_>], epoch: i64) -> Result<Vec<u8>> {
    let mut sorted: Vec<&Entry<'_>> = entries.iter().collect();
    // "a" < "a/b" < "a.b" would put a folder's files after a sibling file
    // whose name sorts between; comparing paths part by part does not.
    sorted.sort_by(|a, b| a.path().split('/').cmp(b.path().split('/')));
    let mtime = u64::try_from(epoch).unwrap_or(0);
    let mut out = Vec::new();
    for entry in sorted {
        let (name, mode, bytes, kind) = match entry {
            Entry::Dir { path, mode } => (format!("{path}/"), *mode, &[][..], b'5'),
            Entry::File { path, mode, bytes } => ((*path).to_string(), *mode, *bytes, b'0'),
        };
        out.extend_from_slice(&header(&name, mode, bytes.len() as u64, mtime, kind)?);
        out.extend_from_slice(bytes);
        out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
    }
    out.resize(out.len() + 2 * BLOCK, 0);
    Ok(out)
}

/// One ustar header block.
fn header(name: &str, mode: u32, size: u64, mtime: u64, kind: u8) -> Result<[u8; BLOCK]> {
    let mut h = [0u8; BLOCK];
    let (prefix, name) = split_name(name).ok_or_else(|| {
        Error::Invalid(format!(
            "cannot put `{name}` in a tar archive: the path is too long for ustar"
        ))
    })?;
    h[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut h[100..108], u64::from(mode & 0o7777))?;
    octal(&mut h[108..116], 0)?;
    octal(&mut h[116..124], 0)?;
    octal(&mut h[124..136], size)?;
    octal(&mut h[136..148], mtime)?;
    h[156] = kind;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[265..269].copy_from_slice(b"root");
    h[297..301].copy_from_slice(b"root");
    octal(&mut h[329..337], 0)?;
    octal(&mut h[337..345], 0)?;
    h[345..345 + prefix.len()].copy_from_slice(prefix.as_bytes());
    // The checksum is taken with its own field as eight spaces, and written
    // as six octal digits, a NUL and a space.
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
    let digits = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(digits.as_bytes());
    Ok(h)
}

/// (prefix, name): the whole path in `name` when it fits in 100 bytes, else
/// split at a `/` so the prefix fits in 155.
fn split_name(path: &str) -> Option<(&str, &str)> {
    if path.len() <= 100 {
        return Some(("", path));
    }
    let trimmed = path.trim_end_matches('/');
    path.char_indices()
        .filter(|&(i, c)| c == '/' && i < trimmed.len())
        .map(|(i, _)| (&path[..i], &path[i + 1..]))
        .find(|(prefix, name)| prefix.len() <= 155 && name.len() <= 100 && !name.is_empty())
}

/// Zero-padded octal with a NUL terminator, filling `field`.
fn octal(field: &mut [u8], value: u64) -> Result<()> {
    let width = field.len() - 1;
    let text = format!("{value:0width$o}");
    if text.len() > width {
        return Err(Error::Invalid(format!(
            "cannot put {value} in a tar header field of {width} octal digits"
        )));
    }
    field[..width].copy_from_slice(text.as_bytes());
    field[width] = 0;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Entry<'static>> {
        vec![
            Entry::File {
                path: "var/sota/import/pkey.pem",
                mode: 0o600,
                bytes: b"key\n",
            },
            Entry::Dir {
                path: "var/sota",
                mode: 0o700,
            },
            Entry::Dir {
                path: "var",
                mode: 0o755,
            },
            Entry::Dir {
                path: "var/sota/import",
                mode: 0o700,
            },
            Entry::File {
                path: "var/sota/import/client.pem",
                mode: 0o644,
                bytes: &[b'c'; 513],
            },
        ]
    }

    #[test]
    fn same_content_same_bytes_whatever_the_order() {
        let a = build(&sample(), 1_700_000_000).unwrap();
        let mut reversed = sample();
        reversed.reverse();
        assert_eq!(a, build(&reversed, 1_700_000_000).unwrap());
        assert_ne!(a, build(&sample(), 1_700_000_001).unwrap());
        // 5 headers, 1 + 2 data blocks, 2 end blocks.
        assert_eq!(a.len(), (5 + 3 + 2) * BLOCK);
    }

    #[test]
    fn headers_are_ustar_with_a_valid_checksum() {
        let a = build(&sample(), 1_700_000_000).unwrap();
        let h = &a[..BLOCK];
        assert_eq!(&h[..4], b"var/");
        assert_eq!(h[156], b'5');
        assert_eq!(&h[100..108], b"0000755\0");
        assert_eq!(&h[136..148], b"14524770400\0");
        assert_eq!(&h[257..265], b"ustar\x0000");
        let stored = u64::from_str_radix(std::str::from_utf8(&h[148..154]).unwrap(), 8).unwrap();
        let mut blank = h.to_vec();
        blank[148..156].copy_from_slice(b"        ");
        assert_eq!(stored, blank.iter().map(|&b| u64::from(b)).sum::<u64>());
    }

    #[test]
    fn long_paths_use_the_prefix_or_are_refused() {
        let long = format!("{}/var/sota/import/client.pem", "d".repeat(90));
        assert_eq!(split_name(&long).unwrap().1, "var/sota/import/client.pem");
        assert!(split_name(&"x".repeat(101)).is_none());
    }
}
