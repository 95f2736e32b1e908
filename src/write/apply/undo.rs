//! What a run changed, to take back when it fails half-way or to finish
//! when it succeeds.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, Mode};

use super::opened::{split, Opened};
use super::types::{Applied, Options};
use super::writer::{set_mtime, set_mtime_path};
use crate::aktualizr::paths::OWNED_DIRS;
use crate::error::Result;
use crate::intake::catalogue::Side;
use crate::plan::files::{is_within, Plan};

/// What to take back when a run fails half-way, and the folders the write
/// phase opened (every change is made through one of them).
#[derive(Debug, Default)]
pub(super) struct Undo {
    pub(super) held: Opened,
    /// Roots and their parents created by path, parents first.
    pub(super) created_roots: Vec<PathBuf>,
    /// (parent, name, the folder's own handle once opened).
    pub(super) created: Vec<(usize, String, Option<usize>)>,
    /// (folder, its mode before).
    pub(super) moded: Vec<(usize, u32)>,
    /// (folder, name), `None` once renamed into place.
    pub(super) temps: Vec<Option<(usize, String)>>,
    pub(super) placed: Vec<(usize, String)>,
    /// (folder, backup name, original name) of replaced and removed files.
    pub(super) moved_aside: Vec<(usize, String, String)>,
    /// (folder, side, path) of removed files.
    pub(super) removed: Vec<(usize, Side, String)>,
}

impl Undo {
    /// Ends a transaction: [`Undo::finish`] when it succeeded, or
    /// [`Undo::roll_back`] when it failed; returns its result.
    pub(super) fn settle(
        &self,
        plan: &Plan,
        opts: &Options,
        result: Result<Applied>,
    ) -> Result<Applied> {
        match result {
            Ok(applied) => {
                self.finish(plan, opts);
                Ok(applied)
            }
            Err(e) => {
                self.roll_back();
                Err(e)
            }
        }
    }

    /// Best effort: every step is tried even if one fails.
    pub(super) fn roll_back(&self) {
        let held = &self.held;
        let fd = |i: usize| held.fds.get(i).map(AsFd::as_fd);
        for (d, name) in self.placed.iter().rev() {
            if let Some(fd) = fd(*d) {
                let _ = rfs::unlinkat(fd, name.as_str(), AtFlags::empty());
            }
        }
        for (d, old, original) in self.moved_aside.iter().rev() {
            if let Some(fd) = fd(*d) {
                let _ = rfs::renameat(fd, old.as_str(), fd, original.as_str());
            }
        }
        for (d, temp) in self.temps.iter().flatten() {
            if let Some(fd) = fd(*d) {
                let _ = rfs::unlinkat(fd, temp.as_str(), AtFlags::empty());
            }
        }
        for (d, mode) in self.moded.iter().rev() {
            if let Some(fd) = fd(*d) {
                let _ = rfs::fchmod(fd, Mode::from_raw_mode(*mode));
            }
        }
        for (parent, name, _) in self.created.iter().rev() {
            if let Some(fd) = fd(*parent) {
                let _ = rfs::unlinkat(fd, name.as_str(), AtFlags::REMOVEDIR);
            }
        }
        for dir in self.created_roots.iter().rev() {
            let _ = fs::remove_dir(dir);
        }
    }

    /// After success: the backups go, the folders that removed files
    /// leave empty go, folder times are set, and with `sync` each changed
    /// folder is synced once.
    pub(super) fn finish(&self, plan: &Plan, opts: &Options) {
        let held = &self.held;
        let fd = |i: usize| held.fds.get(i).map(AsFd::as_fd);
        let mut changed: BTreeSet<usize> = BTreeSet::new();
        for (d, old, _) in &self.moved_aside {
            if let Some(fd) = fd(*d) {
                let _ = rfs::unlinkat(fd, old.as_str(), AtFlags::empty());
            }
        }
        // A removed file's folders that it leaves empty, up to the first
        // that holds something else or that this plan stages into; only
        // folders of the tool's own (never a root, `usr` or `var`).
        for (_, side, rel) in &self.removed {
            let mut folder = split(rel).0;
            while !folder.is_empty() {
                let ours = *side == Side::Host || OWNED_DIRS.iter().any(|o| is_within(folder, o));
                let staged = plan
                    .dirs
                    .iter()
                    .any(|d| d.side == *side && d.path == folder);
                if !ours || staged {
                    break;
                }
                let (parent, name) = split(folder);
                let Some(p) = held.at.get(&(*side, parent.to_string())).copied().flatten() else {
                    break;
                };
                let Some(pfd) = fd(p) else { break };
                if rfs::unlinkat(pfd, name, AtFlags::REMOVEDIR).is_err() {
                    break;
                }
                changed.insert(p);
                folder = parent;
            }
        }
        // Folders created here get the same time as the files; their mtime
        // changed with every rename, so set it last.
        for (_, _, made) in self.created.iter().rev() {
            if let Some(fd) = made.and_then(fd) {
                set_mtime(fd, opts.epoch);
            }
        }
        for dir in self.created_roots.iter().rev() {
            set_mtime_path(dir, opts.epoch);
        }
        if opts.sync {
            changed.extend(self.placed.iter().map(|(d, _)| *d));
            changed.extend(self.removed.iter().map(|(d, _, _)| *d));
            changed.extend(self.created.iter().map(|(p, _, _)| *p));
            for d in changed {
                if let Some(fd) = fd(d) {
                    let _ = rfs::fsync(fd);
                }
            }
            let parents: BTreeSet<&Path> = self
                .created_roots
                .iter()
                .filter_map(|p| p.parent())
                .collect();
            for dir in parents {
                if let Ok(dir) = File::open(dir) {
                    let _ = dir.sync_all();
                }
            }
        }
    }
}
