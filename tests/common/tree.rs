//! Whole trees read back from disk, for comparing what a run staged.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::pki::hex;

/// What is at one path: a folder or a file, with its mode and mtime.
#[derive(Clone, PartialEq, Eq)]
pub struct Node {
    pub mode: u32,
    pub mtime: (i64, i64),
    /// `None` for a folder, the target for a link.
    pub bytes: Option<Vec<u8>>,
}

/// Short, so a failed tree comparison stays readable: mode in octal, and
/// the size and digest of the bytes.
impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use sha2::Digest;
        write!(
            f,
            "{:o} mtime {}.{:09}",
            self.mode, self.mtime.0, self.mtime.1
        )?;
        if let Some(b) = &self.bytes {
            let digest = sha2::Sha256::digest(b);
            write!(f, " {} bytes sha256 {}", b.len(), &hex(&digest)[..16])?;
        }
        Ok(())
    }
}

/// Every path under `root` (and `root` itself, as ""), links not followed.
/// An absent root is an empty map.
pub fn tree(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    if fs::symlink_metadata(root).is_ok() {
        walk(root, "", &mut out);
    }
    out
}

fn walk(path: &Path, rel: &str, out: &mut BTreeMap<String, Node>) {
    let m = fs::symlink_metadata(path).unwrap();
    let bytes = if m.is_file() {
        Some(fs::read(path).unwrap())
    } else if m.file_type().is_symlink() {
        Some(
            fs::read_link(path)
                .unwrap()
                .into_os_string()
                .into_encoded_bytes(),
        )
    } else {
        None
    };
    out.insert(
        rel.to_string(),
        Node {
            mode: m.mode(),
            mtime: (m.mtime(), m.mtime_nsec()),
            bytes,
        },
    );
    if m.is_dir() {
        let mut names: Vec<_> = fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        for name in names {
            let child = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            walk(&path.join(&name), &child, out);
        }
    }
}
