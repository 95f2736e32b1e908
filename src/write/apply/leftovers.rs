//! Cleaning up what a killed run left: its temporaries and the files it
//! had moved aside, each put back where the original is missing.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{self as rfs, AtFlags, FileType};

use super::opened::{file_type, split, stat_in, Opened};
use super::transaction::open_outside;
use super::types::Outside;
use crate::aktualizr::paths::OWNED_DIRS;
use crate::error::{Error, Result};
use crate::intake::catalogue::Side;
use crate::plan::files::{is_within, leftover, Plan, OLD};

/// Removes what a killed run of this tool left in the folders the plan
/// writes to: its temporaries (`.NAME.sota-stage-PID.tmp`) and the files it
/// had moved aside (`.NAME.sota-stage-PID.old`), each put back where the
/// original is missing (the run that moved it never finished). Only these
/// names, which nothing but this tool makes; in the manifest's folder only
/// those of the manifest. Returns how many were found.
pub(super) fn recover(
    plan: &Plan,
    looked: &mut Opened,
    outside: Option<&Outside<'_>>,
) -> Result<usize> {
    let mut folders: BTreeSet<(Side, &str)> = BTreeSet::new();
    for (side, rel) in plan
        .files
        .iter()
        .map(|f| (f.side, f.path.as_str()))
        .chain(plan.retired.iter().map(|(s, r)| (*s, r.as_str())))
    {
        let parent = split(rel).0;
        if side == Side::Device && !OWNED_DIRS.iter().any(|o| is_within(parent, o)) {
            continue;
        }
        if looked.at.contains_key(&(side, String::new())) {
            folders.insert((side, parent));
        }
    }
    let mut found = 0;
    for (side, folder) in folders {
        // Only through real folders: a link or a file on the way is
        // refused by the check that follows, and never followed here.
        let Ok(Some(i)) = looked.get(side, folder) else {
            continue;
        };
        found += recover_in(looked.fd(i)?, &looked.shown(i, ""), None)?;
    }
    if let Some(out) = outside {
        if let Ok((fd, name, folder)) = open_outside(out) {
            found += recover_in(fd.as_fd(), &folder, Some(&name))?;
        }
    }
    Ok(found)
}

/// [`recover`] in one folder; `only`: the leftovers of this name alone.
pub(super) fn recover_in(dir: BorrowedFd<'_>, shown: &Path, only: Option<&str>) -> Result<usize> {
    let entries = rfs::Dir::read_from(dir).map_err(|e| Error::io("list", shown, e.into()))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", shown, e.into()))?;
        let name = OsStr::from_bytes(entry.file_name().to_bytes());
        if let Some(name) = name.to_str() {
            names.push(name.to_string());
        }
    }
    let mut found = 0;
    for name in names {
        let Some((original, kind)) = leftover(&name) else {
            continue;
        };
        if only.is_some_and(|o| o != original) {
            continue;
        }
        let path = shown.join(&name);
        let st = stat_in(dir, &name).map_err(|e| Error::io("look at", &path, e))?;
        match st {
            Some(st) if file_type(&st) != FileType::Directory => {}
            _ => continue,
        }
        let gone = stat_in(dir, original)
            .map_err(|e| Error::io("look at", &shown.join(original), e))?
            .is_none();
        if kind == OLD && gone {
            rfs::renameat(dir, name.as_str(), dir, original)
                .map_err(|e| Error::io("put back", &shown.join(original), e.into()))?;
        } else {
            rfs::unlinkat(dir, name.as_str(), AtFlags::empty())
                .map_err(|e| Error::io("remove the leftover", &path, e.into()))?;
        }
        found += 1;
    }
    Ok(found)
}
