//! Whole trees read back from disk, for comparing what a run staged or left
//! behind: the one tree walker of the tests, on `walkdir`. The unit tests
//! include this file too (`src/test_support.rs`).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use walkdir::{DirEntry, WalkDir};

/// What is at one path: a folder, a file or a link, with its mode and mtime.
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
            let short: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
            write!(f, " {} bytes sha256 {short}", b.len())?;
        }
        Ok(())
    }
}

/// Every entry under `root` (and `root` itself, as ""), sorted by name,
/// links not followed, with its path relative to `root`. `prune` gets the
/// relative path of each folder below the root and says whether to leave
/// it out with all it holds. An absent root gives nothing.
#[track_caller]
pub fn walk(root: &Path, mut prune: impl FnMut(&Path) -> bool) -> Vec<(PathBuf, DirEntry)> {
    if fs::symlink_metadata(root).is_err() {
        return Vec::new();
    }
    let relative = |entry: &DirEntry| {
        entry
            .path()
            .strip_prefix(root)
            .unwrap_or_else(|_| panic!("{} is outside {}", entry.path().display(), root.display()))
            .to_path_buf()
    };
    WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_type().is_dir() || !prune(&relative(e)))
        .map(|e| {
            let e = e.unwrap_or_else(|e| panic!("cannot walk `{}`: {e}", root.display()));
            (relative(&e), e)
        })
        .collect()
}

/// Every path under `root` (and `root` itself, as "") with its mode, mtime
/// and bytes. An absent root is an empty map.
#[track_caller]
pub fn tree(root: &Path) -> BTreeMap<String, Node> {
    walk(root, |_| false)
        .into_iter()
        .map(|(rel, entry)| {
            let path = entry.path();
            let m = entry
                .metadata()
                .unwrap_or_else(|e| panic!("cannot look at `{}`: {e}", path.display()));
            let bytes = if m.is_file() {
                Some(
                    fs::read(path)
                        .unwrap_or_else(|e| panic!("cannot read `{}`: {e}", path.display())),
                )
            } else if m.file_type().is_symlink() {
                let target = fs::read_link(path)
                    .unwrap_or_else(|e| panic!("cannot read link `{}`: {e}", path.display()));
                Some(target.into_os_string().into_encoded_bytes())
            } else {
                None
            };
            let node = Node {
                mode: m.mode(),
                mtime: (m.mtime(), m.mtime_nsec()),
                bytes,
            };
            (rel.to_string_lossy().into_owned(), node)
        })
        .collect()
}

/// Copies the tree at `from` to `to` (folders and files; links are not
/// followed), for tests that build on a checked-in layer.
pub fn copy_tree(from: &Path, to: &Path) {
    for (rel, entry) in walk(from, |_| false) {
        let target = to.join(rel);
        if entry.file_type().is_dir() {
            fs::create_dir_all(&target).unwrap();
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}
