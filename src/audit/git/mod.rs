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
//! - `idx.rs`: a pack's `.idx`, used only when it is well formed.
//! - `window.rs`: a pack's bytes in memory, through the walk's window and
//!   the bases' window.
//! - `common.rs`: what the parts share (limits, object kinds and ids,
//!   errors, the work budget).
//!
//! Not read: `objects/info/alternates` (another repository's objects,
//! searched where they are), `.promisor` remotes, the commit-graph and
//! multi-pack-index (derived data). A REF_DELTA base is looked for in its
//! own pack and the loose objects only, as git packs are self-contained.
//!
//! Every bound is in [`Limits`]; what is not read is an `Err(`[`Skipped`]`)`
//! item naming the object (or the pack and offset) and why, never bytes of
//! the repository.

mod common;
mod delta;
mod idx;
mod loose;
mod pack;
mod tree;
mod window;

use std::collections::HashSet;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

#[cfg(test)]
use common::parse_hex;
#[allow(unused_imports)] // until the scanner names its findings (issue 18)
use common::Budget;
pub use common::{hex, object_id, Kind, Limits, Object, Skipped};

/// For each of `ids` that a commit reaches, one such commit (its id in
/// hex) and the object's path in that commit's tree (`""` for the root
/// tree or the commit itself); bounded by `limits` like [`Repo::objects`].
pub fn paths(
    repo: &Repo,
    ids: &HashSet<[u8; 20]>,
    limits: &Limits,
) -> std::collections::HashMap<[u8; 20], (String, String)> {
    let (pack_files, _) = repo.packs(limits);
    tree::paths(repo.git_dir(), &pack_files, ids, limits)
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
