//! Git repositories (a `.git` folder, or a bare repository): every object
//! of the object database once, by id, reachable or not, with deltas
//! applied, so that a secret committed and removed later is found even
//! when it survives only across a delta's instructions (audit-anchors §2).
//!
//! - [`Repo::objects`]: the packs (`objects/pack/pack-*.pack`, in name
//!   order, each walked from its start: `pack.rs`), then the loose objects
//!   (`objects/xx/<38 hex>`: `loose.rs`). Each object's id is computed
//!   (SHA-1 of `type len\0` and the content), never taken from a file
//!   name or an `.idx`, and an id already given is not given again.
//! - [`paths`]: for the ids a search found, one commit and path reaching
//!   each, from every ref, the reflogs and `HEAD` (`tree.rs`).
//! - `delta.rs`: the delta instructions, applied within the size cap.
//!
//! Not read: `objects/info/alternates` (another repository's objects,
//! searched where they are), `.promisor` remotes, the commit-graph and
//! multi-pack-index (derived data). A REF_DELTA base is looked for in its
//! own pack and the loose objects only, as git packs are self-contained.
//!
//! Every bound is in [`Limits`]; what is not read is an `Err(`[`Skipped`]`)`
//! item naming the object (or the pack and offset) and why, never bytes of
//! the repository.

mod delta;
mod loose;
mod pack;
mod tree;

use std::collections::HashSet;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use sha1::{Digest, Sha1};

#[allow(unused_imports)] // until the scanner names its findings (issue 18)
pub use tree::paths;

const MIB: u64 = 1024 * 1024;

/// The bounds of reading one repository.
#[derive(Debug, Clone)]
pub struct Limits {
    /// An object (or a delta) larger than this is not read: an `Err` item
    /// names it. 64 MiB.
    pub object_bytes: u64,
    /// Most objects (pack entries and loose files) read, and ids held in
    /// the seen set; the rest is an `Err` item. 1,000,000 (about 40 MiB of
    /// ids and pack indexes).
    pub objects: u64,
    /// Most bytes inflated or built by deltas in the repository, bases
    /// read again included, each zlib stream counted as at least 256
    /// bytes. 16 GiB.
    pub inflated_bytes: u64,
    /// Longest delta chain followed, as git's own maximum. 4095.
    pub delta_depth: u32,
    /// Inflated delta bases kept for later deltas, in bytes (git's
    /// `core.deltaBaseCacheLimit` is 96 MiB); [`paths`] shares it among
    /// the packs. 32 MiB.
    pub base_cache: u64,
    /// Most pack files read. 4096.
    pub packs: usize,
    /// Most refs and reflog entries the path walk starts from. 100,000.
    pub refs: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            object_bytes: 64 * MIB,
            objects: 1_000_000,
            inflated_bytes: 16 * 1024 * MIB,
            delta_depth: 4095,
            base_cache: 32 * MIB,
            packs: 4096,
            refs: 100_000,
        }
    }
}

/// An object's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Blob,
    Tree,
    Commit,
    Tag,
}

impl Kind {
    /// Its name in object headers.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Blob => "blob",
            Kind::Tree => "tree",
            Kind::Commit => "commit",
            Kind::Tag => "tag",
        }
    }

    fn from_name(name: &[u8]) -> Option<Kind> {
        match name {
            b"blob" => Some(Kind::Blob),
            b"tree" => Some(Kind::Tree),
            b"commit" => Some(Kind::Commit),
            b"tag" => Some(Kind::Tag),
            _ => None,
        }
    }
}

/// One object of the repository.
#[derive(Clone, PartialEq, Eq)]
pub struct Object {
    /// Computed from the content.
    pub id: [u8; 20],
    pub kind: Kind,
    pub data: Vec<u8>,
}

impl fmt::Debug for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the content: it may be a secret.
        f.debug_struct("Object")
            .field("id", &hex(&self.id))
            .field("kind", &self.kind)
            .field("len", &self.data.len())
            .finish()
    }
}

/// Something of the repository that was not searched, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The object's id when known (a loose object's file name, a pack
    /// entry's `.idx` line).
    pub id: Option<[u8; 20]>,
    /// Where it is: `objects/pack/pack-….pack at offset N`, `objects/xx/…`,
    /// relative to the git folder.
    pub place: String,
    /// A sentence, no repository bytes.
    pub why: String,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.id {
            Some(id) => write!(f, "{} (object {}): {}", self.place, hex(id), self.why),
            None => write!(f, "{}: {}", self.place, self.why),
        }
    }
}

impl std::error::Error for Skipped {}

/// The lowercase hex of an id.
pub fn hex(id: &[u8; 20]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// The id of 40 hex digits (either case), if `text` is one.
pub fn parse_hex(text: &[u8]) -> Option<[u8; 20]> {
    if text.len() != 40 {
        return None;
    }
    let mut id = [0u8; 20];
    for (byte, pair) in id.iter_mut().zip(text.chunks_exact(2)) {
        let digit = |c: u8| (c as char).to_digit(16);
        *byte = u8::try_from(digit(*pair.first()?)? * 16 + digit(*pair.get(1)?)?).ok()?;
    }
    Some(id)
}

/// git's id of an object: SHA-1 of `type len\0` and the content.
pub fn object_id(kind: Kind, data: &[u8]) -> [u8; 20] {
    let mut h = Sha1::new();
    h.update(format!("{} {}\0", kind.name(), data.len()).as_bytes());
    h.update(data);
    h.finalize().into()
}

/// The work done in one repository, against its limits.
#[derive(Debug)]
pub(crate) struct Budget {
    inflated: u64,
    entries: u64,
    max_inflated: u64,
    max_entries: u64,
}

impl Budget {
    fn new(limits: &Limits) -> Budget {
        Budget {
            inflated: 0,
            entries: 0,
            max_inflated: limits.inflated_bytes,
            max_entries: limits.objects,
        }
    }

    /// Counts `n` bytes inflated; `Err` once over the limit.
    fn spend(&mut self, n: u64) -> io::Result<()> {
        self.inflated = self.inflated.saturating_add(n);
        if self.inflated > self.max_inflated {
            return Err(io::Error::other(format!(
                "more than {} MiB inflated in this repository: the rest is not searched",
                self.max_inflated / MIB
            )));
        }
        Ok(())
    }

    /// Counts one object read; `Err` once over the limit.
    fn entry(&mut self) -> io::Result<()> {
        self.entries += 1;
        if self.entries > self.max_entries {
            return Err(io::Error::other(format!(
                "more than {} objects in this repository: the rest is not searched",
                self.max_entries
            )));
        }
        Ok(())
    }

    fn exhausted(&self) -> bool {
        self.inflated > self.max_inflated || self.entries > self.max_entries
    }
}

fn is_dir(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok_and(|m| m.is_dir())
}

/// Whether `dir` is a git folder itself (a bare repository, or a `.git`
/// folder): a `HEAD` file, `objects/` and `refs/` folders.
pub fn is_bare(dir: &Path) -> bool {
    fs::symlink_metadata(dir.join("HEAD")).is_ok_and(|m| m.is_file())
        && is_dir(&dir.join("objects"))
        && is_dir(&dir.join("refs"))
}

/// Whether `dir` holds a git repository: a `.git` folder, or `dir` is a
/// bare repository (a `HEAD` file, `objects/` and `refs/` folders). Links
/// are not followed.
#[allow(dead_code)] // the tests ask it; the walk asks is_bare of each folder
pub fn is_repo(dir: &Path) -> bool {
    is_dir(&dir.join(".git")) || is_bare(dir)
}

/// A repository opened: its git folder.
#[derive(Debug, Clone)]
pub struct Repo {
    git_dir: PathBuf,
}

impl Repo {
    /// Opens the repository of `dir` (its `.git` folder, or `dir` itself
    /// when bare); `Err` when neither is one.
    pub fn open(dir: &Path) -> io::Result<Repo> {
        let dot = dir.join(".git");
        let git_dir = if is_dir(&dot) && is_dir(&dot.join("objects")) {
            dot
        } else if is_dir(&dir.join("objects")) {
            dir.to_path_buf()
        } else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "not a git repository: no objects folder",
            ));
        };
        Ok(Repo { git_dir })
    }

    /// The git folder (`dir/.git`, or `dir`).
    pub fn git_dir(&self) -> &Path {
        &self.git_dir
    }

    /// The pack files, sorted by name; `true` when more than the limit.
    fn packs(&self, limits: &Limits) -> (Vec<(PathBuf, String)>, bool) {
        let dir = self.git_dir.join("objects").join("pack");
        let Ok(list) = fs::read_dir(&dir) else {
            return (Vec::new(), false);
        };
        let mut names: Vec<String> = list
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with("pack-") && n.ends_with(".pack"))
            .take(limits.packs.saturating_add(1))
            .collect();
        let more = names.len() > limits.packs;
        names.truncate(limits.packs);
        names.sort();
        let packs = names
            .into_iter()
            .map(|n| (dir.join(&n), format!("objects/pack/{n}")))
            .collect();
        (packs, more)
    }

    /// Every object of the repository once, packs first, then loose ones.
    pub fn objects(&self, limits: &Limits) -> Objects<'_> {
        let (packs, more) = self.packs(limits);
        Objects {
            repo: self,
            limits: limits.clone(),
            budget: Budget::new(limits),
            seen: HashSet::new(),
            packs,
            too_many_packs: more,
            next_pack: 0,
            pack: None,
            loose: None,
            loose_more: false,
            done: false,
        }
    }
}

/// The objects of a repository, each once: `Ok` an object read, `Err` one
/// (or a part of the repository) not searched.
pub struct Objects<'r> {
    repo: &'r Repo,
    limits: Limits,
    budget: Budget,
    seen: HashSet<[u8; 20]>,
    packs: Vec<(PathBuf, String)>,
    too_many_packs: bool,
    next_pack: usize,
    pack: Option<pack::Pack>,
    /// The loose files left, once the packs are read.
    loose: Option<std::vec::IntoIter<[u8; 20]>>,
    loose_more: bool,
    done: bool,
}

impl fmt::Debug for Objects<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Objects")
            .field("repo", &self.repo.git_dir)
            .field("seen", &self.seen.len())
            .finish_non_exhaustive()
    }
}

impl Objects<'_> {
    fn give(&mut self, id: [u8; 20], kind: Kind, data: Vec<u8>) -> Option<Result<Object, Skipped>> {
        if self.seen.contains(&id) {
            return None;
        }
        if self.seen.len() as u64 >= self.limits.objects {
            self.done = true;
            return Some(Err(Skipped {
                id: Some(id),
                place: "objects".into(),
                why: format!(
                    "more than {} objects in this repository: the rest is not searched",
                    self.limits.objects
                ),
            }));
        }
        self.seen.insert(id);
        Some(Ok(Object { id, kind, data }))
    }

    fn next_packed(&mut self) -> Option<Result<Object, Skipped>> {
        loop {
            if let Some(p) = &mut self.pack {
                let mut ctx = pack::Ctx {
                    git_dir: &self.repo.git_dir,
                    limits: &self.limits,
                    budget: &mut self.budget,
                };
                match p.next(&mut ctx) {
                    Some(pack::Step::Object { id, kind, data }) => {
                        match self.give(id, kind, data) {
                            Some(item) => return Some(item),
                            None => continue,
                        }
                    }
                    Some(pack::Step::Skipped(s)) => return Some(Err(s)),
                    None => self.pack = None,
                }
            }
            if self.budget.exhausted() {
                return None;
            }
            let (path, name) = match self.packs.get(self.next_pack) {
                Some(p) => p.clone(),
                None if self.too_many_packs => {
                    self.too_many_packs = false;
                    return Some(Err(Skipped {
                        id: None,
                        place: "objects/pack".into(),
                        why: format!(
                            "more than {} packs: the rest are not searched",
                            self.limits.packs
                        ),
                    }));
                }
                None => return None,
            };
            self.next_pack += 1;
            match pack::Pack::open(&path, name.clone(), &self.limits) {
                Ok(p) => self.pack = Some(p),
                Err(e) => {
                    return Some(Err(Skipped {
                        id: None,
                        place: name,
                        why: e.to_string(),
                    }))
                }
            }
        }
    }

    fn next_loose(&mut self) -> Option<Result<Object, Skipped>> {
        if self.loose.is_none() {
            let left = self.limits.objects.saturating_sub(self.budget.entries);
            let (files, more) = loose::list(&self.repo.git_dir, left);
            self.loose = Some(files.into_iter());
            self.loose_more = more;
        }
        loop {
            let id = match self.loose.as_mut().and_then(|l| l.next()) {
                Some(id) => id,
                None => {
                    self.done = true;
                    return self.loose_more.then(|| {
                        Err(Skipped {
                            id: None,
                            place: "objects".into(),
                            why: format!(
                                "more than {} objects in this repository: the rest is not searched",
                                self.limits.objects
                            ),
                        })
                    });
                }
            };
            let named = Some(id);
            let path = loose::path_of(&self.repo.git_dir, &id);
            let rel = {
                let h = hex(&id);
                format!(
                    "objects/{}/{}",
                    h.get(..2).unwrap_or_default(),
                    h.get(2..).unwrap_or_default()
                )
            };
            if let Err(e) = self.budget.entry() {
                self.done = true;
                return Some(Err(Skipped {
                    id: named,
                    place: rel,
                    why: e.to_string(),
                }));
            }
            match loose::read(&path, &self.limits, &mut self.budget) {
                Ok(loose::Loose::Object(kind, data)) => {
                    let id = object_id(kind, &data);
                    match self.give(id, kind, data) {
                        Some(item) => return Some(item),
                        None => continue,
                    }
                }
                Ok(loose::Loose::TooLarge(kind, size)) => {
                    return Some(Err(Skipped {
                        id: named,
                        place: rel,
                        why: format!(
                            "a {} of {size} bytes, over the {}-byte cap",
                            kind.name(),
                            self.limits.object_bytes
                        ),
                    }))
                }
                Err(e) => {
                    if self.budget.exhausted() {
                        self.done = true;
                    }
                    return Some(Err(Skipped {
                        id: named,
                        place: rel,
                        why: e.to_string(),
                    }));
                }
            }
        }
    }
}

impl Iterator for Objects<'_> {
    type Item = Result<Object, Skipped>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.loose.is_none() {
            if let Some(item) = self.next_packed() {
                return Some(item);
            }
            if self.budget.exhausted() {
                self.done = true;
                return None;
            }
        }
        self.next_loose()
    }
}

#[cfg(test)]
mod tests;
