//! Loose objects: `objects/xx/<38 hex>`, a zlib stream of `type size\0`
//! and the content. The header is read first (at most 32 bytes); an
//! object over the size cap is not read further. The content must be as
//! long as the header says.

use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use super::common::{hex, parse_hex, Budget, Kind, Limits};
use crate::audit::decode::{self, Codec};

/// What the zlib decoder may hold (its state and input buffer).
const INFLATE_MEMORY: u64 = 1024 * 1024;

fn damaged(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("git loose object: {what}"),
    )
}

/// A loose object read.
pub(super) enum Loose {
    Object(Kind, Vec<u8>),
    /// Over the size cap: its kind and declared size, content not read.
    TooLarge(Kind, u64),
}

/// The file a loose object `id` would be in.
pub(super) fn path_of(git_dir: &Path, id: &[u8; 20]) -> PathBuf {
    let h = hex(id);
    let (dir, file) = h.split_at(2);
    git_dir.join("objects").join(dir).join(file)
}

/// Whether a loose object file `id` is there (a regular file, not a link).
pub(super) fn exists(git_dir: &Path, id: &[u8; 20]) -> bool {
    fs::symlink_metadata(path_of(git_dir, id)).is_ok_and(|m| m.is_file())
}

/// The loose object `id`; `None` when there is no such file.
pub(super) fn read_by_id(
    git_dir: &Path,
    id: &[u8; 20],
    limits: &Limits,
    budget: &mut Budget,
) -> io::Result<Option<(Kind, Vec<u8>)>> {
    if !exists(git_dir, id) {
        return Ok(None);
    }
    match read(&path_of(git_dir, id), limits, budget)? {
        Loose::Object(kind, data) => Ok(Some((kind, data))),
        Loose::TooLarge(..) => Err(damaged("over the object size cap")),
    }
}

/// Parses `type size` (the bytes before the NUL).
fn header(head: &[u8]) -> Option<(Kind, u64)> {
    let space = head.iter().position(|&b| b == b' ')?;
    let (name, size) = (head.get(..space)?, head.get(space + 1..)?);
    let kind = Kind::from_name(name)?;
    if size.is_empty() || size.len() > 20 || !size.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let size = std::str::from_utf8(size).ok()?.parse().ok()?;
    Some((kind, size))
}

/// Reads the loose object file at `path` (never a link).
pub(super) fn read(path: &Path, limits: &Limits, budget: &mut Budget) -> io::Result<Loose> {
    if !fs::symlink_metadata(path)?.is_file() {
        return Err(damaged("not a regular file"));
    }
    let file = File::open(path)?;
    let mut z = decode::open(
        Codec::Zlib,
        Box::new(BufReader::with_capacity(16 * 1024, file)),
        INFLATE_MEMORY,
    )
    .map_err(|r| damaged(&r.0))?;
    let mut head = [0u8; 32];
    let mut got = 0;
    let nul = loop {
        if let Some(at) = head.get(..got).and_then(|h| h.iter().position(|&b| b == 0)) {
            break at;
        }
        let room = head.get_mut(got..).unwrap_or_default();
        if room.is_empty() {
            return Err(damaged("no object header"));
        }
        match z.read(room)? {
            0 => return Err(damaged("no object header")),
            n => got += n,
        }
    };
    let (kind, size) = head
        .get(..nul)
        .and_then(header)
        .ok_or_else(|| damaged("no object header"))?;
    if size > limits.object_bytes {
        return Ok(Loose::TooLarge(kind, size));
    }
    let first = head.get(nul + 1..got).unwrap_or_default();
    budget.spend(got as u64)?;
    let mut data = Vec::with_capacity(usize::try_from(size.min(1 << 20)).unwrap_or(0));
    data.extend_from_slice(first);
    let more = (size + 1).saturating_sub(data.len() as u64);
    let mut chunk = [0u8; 16 * 1024];
    let mut rest = z.take(more);
    loop {
        match rest.read(&mut chunk)? {
            0 => break,
            n => {
                budget.spend(n as u64)?;
                data.extend_from_slice(chunk.get(..n).unwrap_or_default());
            }
        }
    }
    if data.len() as u64 != size {
        return Err(damaged("the content is not the size its header says"));
    }
    Ok(Loose::Object(kind, data))
}

/// The loose objects of `git_dir` by the ids their file names say
/// (`objects/xx/<38 hex>`), sorted, at most `max` of them (then `true`:
/// more were there). Ids, not paths, are held: 20 bytes each.
pub(super) fn list(git_dir: &Path, max: u64) -> (Vec<[u8; 20]>, bool) {
    fn is_hex(name: &str, len: usize) -> bool {
        name.len() == len && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    }
    let mut out = Vec::new();
    let objects = git_dir.join("objects");
    let Ok(dirs) = fs::read_dir(&objects) else {
        return (out, false);
    };
    let mut names: Vec<String> = dirs
        .filter_map(|d| d.ok()?.file_name().into_string().ok())
        .filter(|n| is_hex(n, 2))
        .take(256)
        .collect();
    names.sort();
    for dir in names {
        let Ok(files) = fs::read_dir(objects.join(&dir)) else {
            continue;
        };
        let start = out.len();
        for f in files {
            let Some(name) = f.ok().and_then(|f| f.file_name().into_string().ok()) else {
                continue;
            };
            if !is_hex(&name, 38) {
                continue;
            }
            if out.len() as u64 >= max {
                if let Some(here) = out.get_mut(start..) {
                    here.sort_unstable();
                }
                return (out, true);
            }
            if let Some(id) = parse_hex(format!("{dir}{name}").as_bytes()) {
                out.push(id);
            }
        }
        if let Some(here) = out.get_mut(start..) {
            here.sort_unstable();
        }
    }
    (out, false)
}
