//! OSTree repositories read without libostree (`docs/audit.md`, the
//! anchors' section 4): what a repository is, its content objects'
//! headers, the metadata that names content by path, and static delta
//! parts. The caller searches every object file once (content-addressed,
//! reachable or not); this module tells it how to decode each and, only to
//! name findings, maps content checksums to a path in a ref or commit.
//!
//! - [`is_repo`]: a `config` with `[core] mode=` and an `objects/` folder.
//! - [`filez`]: an archive-mode `.filez` header; the raw deflate follows.
//! - [`paths`]: content checksum -> (ref or `commit:REV`, `/path`).
//! - [`delta_part`]: how a static delta part's payload is compressed.
//!
//! `objects.rs` reads the `.filez` header and the metadata objects (commit,
//! dirtree, dirmeta), `gvariant.rs` the GVariant shapes they use, and
//! `deltas.rs` the static delta parts.
//!
//! Nothing here follows a symlink or opens anything but a regular file
//! (`O_NOFOLLOW`, `O_NONBLOCK`: a fifo named like an object never blocks).
//! Bounds are the constants below and in `objects`; past one, naming
//! stops early (the objects are still searched by the caller: a missing
//! name never hides content).

mod deltas;
mod gvariant;
mod objects;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::audit::findings::{PATH_BYTES, TREE_DEPTH};

// The reader's whole API, for the lead's scanner (some is unused until then).
#[allow(unused_imports)]
pub use deltas::{delta_part, is_delta_part};
#[allow(unused_imports)]
pub use objects::{
    commit, dirmeta, dirtree, filez, hex, object_id, parse_hex, Commit, DirMeta, DirTree,
    FilezHeader, ObjectType,
};

/// The most bytes of `config` read.
const MAX_CONFIG: u64 = 64 << 10;
/// The most ref files read, and how deep under `refs/` they may be.
const MAX_REFS: usize = 100_000;
const MAX_REF_DEPTH: usize = 32;
/// The most commits walked by [`paths`] (refs and objects together).
const MAX_COMMITS: usize = 100_000;
/// The most dirtree objects [`paths`] reads, and how many metadata bytes
/// in all: a repository keeps every build, but identical folders are one
/// object, read once.
const MAX_DIRTREES: usize = 1_000_000;
const MAX_METADATA_BYTES: u64 = 2 << 30;

/// A repository's `[core] mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `archive` or `archive-z2`: content in `.filez` objects.
    Archive,
    /// `bare`: content as plain files (and real symlinks) with owners.
    Bare,
    /// `bare-user`: plain files; symlinks stored as files holding the target.
    BareUser,
    BareUserOnly,
    BareSplitXattrs,
}

impl Mode {
    fn parse(text: &str) -> Option<Mode> {
        Some(match text {
            "archive" | "archive-z2" => Mode::Archive,
            "bare" => Mode::Bare,
            "bare-user" => Mode::BareUser,
            "bare-user-only" => Mode::BareUserOnly,
            "bare-split-xattrs" => Mode::BareSplitXattrs,
            _ => return None,
        })
    }
}

/// The repository's mode when `dir` is an OSTree repository: a regular
/// file `config` whose `[core]` section has a known `mode=`, and an
/// `objects` folder (neither a symlink).
pub fn is_repo(dir: &Path) -> Option<Mode> {
    let objects = std::fs::symlink_metadata(dir.join("objects")).ok()?;
    if !objects.is_dir() {
        return None;
    }
    let text = read_small(&dir.join("config"), MAX_CONFIG).ok()?;
    let text = String::from_utf8_lossy(&text);
    let mut core = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            core = line == "[core]";
        } else if core {
            if let Some((key, value)) = line.split_once('=') {
                if key.trim() == "mode" {
                    return Mode::parse(value.trim());
                }
            }
        }
    }
    None
}

/// Opens a regular file without following a symlink or blocking on a
/// fifo; `Err` for anything else.
fn open_regular(path: &Path) -> io::Result<File> {
    let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits() as i32)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "ostree: not a regular file",
        ));
    }
    Ok(file)
}

/// A whole regular file of at most `max` bytes (`Err` when longer).
fn read_small(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    open_regular(path)?
        .take(max.saturating_add(1))
        .read_to_end(&mut out)?;
    if out.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "ostree: metadata larger than its limit",
        ));
    }
    Ok(out)
}

/// The refs: `refs/heads/**` as `NAME`, `refs/remotes/REMOTE/**` as
/// `REMOTE:NAME` (ostree's refspec), `refs/mirrors/**` as
/// `mirrors/COLLECTION/NAME`; each a file holding 64 hex digits (and a
/// line end). Symlinks (ref aliases) are not followed: their target is a
/// ref too. Sorted by name; at most [`MAX_REFS`].
pub fn refs(repo: &Path) -> Vec<(String, [u8; 32])> {
    let mut out = Vec::new();
    for (top, prefix) in [("heads", ""), ("remotes", ""), ("mirrors", "mirrors/")] {
        let base = repo.join("refs").join(top);
        let mut stack: Vec<(PathBuf, String, usize)> = vec![(base, String::new(), 0)];
        while let Some((dir, name, depth)) = stack.pop() {
            if out.len() >= MAX_REFS {
                break;
            }
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                if out.len() >= MAX_REFS {
                    break;
                }
                let part = String::from_utf8_lossy(entry.file_name().as_bytes()).into_owned();
                let full = if name.is_empty() {
                    part
                } else if top == "remotes" && depth == 1 {
                    format!("{name}:{part}")
                } else {
                    format!("{name}/{part}")
                };
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                if kind.is_dir() {
                    if depth < MAX_REF_DEPTH {
                        stack.push((entry.path(), full, depth + 1));
                    }
                } else if kind.is_file() {
                    if top == "remotes" && depth == 0 {
                        continue; // a remote's refs are in its folder
                    }
                    if let Ok(text) = read_small(&entry.path(), 128) {
                        let text = text.trim_ascii_end_compat();
                        if let Some(rev) = parse_hex(text) {
                            out.push((format!("{prefix}{full}"), rev));
                        }
                    }
                }
            }
        }
    }
    out.sort();
    out
}

/// `trim_ascii_end` is Rust 1.80.
trait TrimEnd {
    fn trim_ascii_end_compat(&self) -> &[u8];
}

impl TrimEnd for [u8] {
    fn trim_ascii_end_compat(&self) -> &[u8] {
        let mut s = self;
        while let [rest @ .., last] = s {
            if last.is_ascii_whitespace() {
                s = rest;
            } else {
                break;
            }
        }
        s
    }
}

/// Every commit the repository holds: each `objects/*/*.commit` and each
/// `state/REV.commitpartial` (a pull that did not finish), sorted, at
/// most [`MAX_COMMITS`].
pub fn commits(repo: &Path) -> BTreeSet<[u8; 32]> {
    let mut out = BTreeSet::new();
    if let Ok(state) = std::fs::read_dir(repo.join("state")) {
        for entry in state.flatten() {
            let name = entry.file_name();
            if let Some(rev) = name.as_bytes().strip_suffix(b".commitpartial") {
                if let Some(rev) = parse_hex(rev) {
                    if out.len() < MAX_COMMITS {
                        out.insert(rev);
                    }
                }
            }
        }
    }
    let Ok(dirs) = std::fs::read_dir(repo.join("objects")) else {
        return out;
    };
    for dir in dirs.flatten() {
        if !dir.file_type().map(|t| t.is_dir()).unwrap_or(false) || dir.file_name().len() != 2 {
            continue;
        }
        let Ok(files) = std::fs::read_dir(dir.path()) else {
            continue;
        };
        for file in files.flatten() {
            if out.len() >= MAX_COMMITS {
                return out;
            }
            let path = file.path();
            if let Some((rev, ObjectType::Commit)) = object_id(&path) {
                out.insert(rev);
            }
        }
    }
    out
}

/// Names content objects: for each checksum of `wanted` that a commit
/// reaches, the ref (or `commit:REV` when no ref's commit reaches it) and
/// its path there (`/usr/share/app/treehub.json`). Refs are walked first
/// (by name), then every commit of [`commits`] (by checksum), parents or
/// not. A dirtree is read once per call (a visited set keyed by checksum:
/// a hostile dirtree may list itself), so a content reached through the
/// same folder object in several commits is named by the first. Missing or
/// damaged objects are skipped; walking stops at the bounds above (the
/// content is still searched, only unnamed). A content of a commit whose
/// metadata is missing (a partial pull) stays unnamed.
pub fn paths(repo: &Path, wanted: &HashSet<[u8; 32]>) -> HashMap<[u8; 32], (String, String)> {
    let mut namer = Namer {
        repo,
        wanted,
        found: HashMap::new(),
        trees: HashSet::new(),
        commits: HashSet::new(),
        bytes: 0,
        all: None,
    };
    if wanted.is_empty() {
        return namer.found;
    }
    for (name, rev) in refs(repo) {
        namer.commit(rev, &name);
        if namer.done() {
            return namer.found;
        }
    }
    for rev in commits(repo) {
        namer.commit(rev, &format!("commit:{}", hex(&rev)));
        if namer.done() {
            break;
        }
    }
    namer.found
}

/// What one commit holds, for an audit of that commit alone (an image
/// build's new commit, before meta-updater pushes it): the commit's id,
/// and every content object its tree reaches with its path, in tree
/// order; bounded as [`paths`]. `name` is a ref (`refs/heads/NAME`, as
/// [`refs`] lists them) or a commit's 64 hex digits; `None` when it names
/// no commit of the repository.
pub fn commit_contents(repo: &Path, name: &str) -> Option<([u8; 32], Contents)> {
    let rev = refs(repo)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, rev)| rev)
        .or_else(|| parse_hex(name.as_bytes()))?;
    let wanted = HashSet::new();
    let mut namer = Namer {
        repo,
        wanted: &wanted,
        found: HashMap::new(),
        trees: HashSet::new(),
        commits: HashSet::new(),
        bytes: 0,
        all: Some(Contents::default()),
    };
    namer.object(&rev, "commit")?;
    namer.commit(rev, name);
    namer.all.map(|all| (rev, all))
}

/// The objects of one commit: its content objects with their paths, and
/// the dirtrees its tree is made of.
#[derive(Debug, Default)]
pub struct Contents {
    pub files: Vec<([u8; 32], String)>,
    pub trees: Vec<[u8; 32]>,
}

struct Namer<'a> {
    /// Every content and dirtree of the walk ([`commit_contents`]).
    all: Option<Contents>,
    repo: &'a Path,
    wanted: &'a HashSet<[u8; 32]>,
    found: HashMap<[u8; 32], (String, String)>,
    /// Dirtrees read (or tried).
    trees: HashSet<[u8; 32]>,
    /// Commits walked.
    commits: HashSet<[u8; 32]>,
    /// Metadata bytes read.
    bytes: u64,
}

impl Namer<'_> {
    fn done(&self) -> bool {
        (self.all.is_none() && self.found.len() >= self.wanted.len())
            || self.trees.len() >= MAX_DIRTREES
            || self.commits.len() >= MAX_COMMITS
            || self.bytes >= MAX_METADATA_BYTES
    }

    /// A metadata object's bytes, counted against the byte budget.
    fn object(&mut self, sum: &[u8; 32], ext: &str) -> Option<Vec<u8>> {
        let hex = hex(sum);
        let (dir, rest) = (hex.get(..2)?, hex.get(2..)?);
        let path = self
            .repo
            .join("objects")
            .join(dir)
            .join(format!("{rest}.{ext}"));
        let data = read_small(&path, objects::MAX_METADATA).ok()?;
        self.bytes = self.bytes.saturating_add(data.len() as u64);
        Some(data)
    }

    fn commit(&mut self, rev: [u8; 32], name: &str) {
        if self.done() || !self.commits.insert(rev) {
            return;
        }
        let Some(data) = self.object(&rev, "commit") else {
            return;
        };
        let Ok(commit) = commit(&data) else {
            return;
        };
        // Depth-first; each entry: dirtree, its path, its depth. A dirtree
        // is marked when pushed, so the stack never holds one twice.
        if !self.trees.insert(commit.root_tree) {
            return;
        }
        let mut stack = vec![(commit.root_tree, String::new(), 0usize)];
        while let Some((tree, path, depth)) = stack.pop() {
            if self.done() {
                return;
            }
            let Some(data) = self.object(&tree, "dirtree") else {
                continue;
            };
            let Ok(listing) = dirtree(&data) else {
                continue;
            };
            if let Some(all) = self.all.as_mut() {
                all.trees.push(tree);
                for (file, sum) in &listing.files {
                    let full = join(&path, file);
                    if full.len() <= PATH_BYTES {
                        all.files.push((*sum, full));
                    }
                }
            }
            for (file, sum) in &listing.files {
                if self.wanted.contains(sum) && !self.found.contains_key(sum) {
                    let full = join(&path, file);
                    if full.len() <= PATH_BYTES {
                        self.found.insert(*sum, (name.to_owned(), full));
                    }
                }
            }
            if depth >= TREE_DEPTH {
                continue;
            }
            for (dir, sub, _meta) in listing.dirs.iter().rev() {
                let full = join(&path, dir);
                if full.len() <= PATH_BYTES
                    && self.trees.len() < MAX_DIRTREES
                    && self.trees.insert(*sub)
                {
                    stack.push((*sub, full, depth + 1));
                }
            }
        }
    }
}

/// `parent/name`, the name made unable to forge a path: ostree refuses
/// `.`, `..`, names with `/` and empty names, a hostile repository need
/// not; those are written with `\u{2e}` and `\u{2f}`. Not UTF-8 is shown
/// lossily (the report escapes control characters).
fn join(parent: &str, name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    let shown = match &*name {
        "" => "\\u{}".to_owned(),
        "." => "\\u{2e}".to_owned(),
        ".." => "\\u{2e}\\u{2e}".to_owned(),
        other => other.replace('/', "\\u{2f}"),
    };
    format!("{parent}/{shown}")
}

#[cfg(test)]
mod tests;
