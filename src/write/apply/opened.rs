//! The folders a run holds open, each opened from its parent's handle with
//! `O_NOFOLLOW | O_DIRECTORY` (never through a link), the stat helpers,
//! and the refusal of a folder opened under both roots.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::error::{Error, Result};
use crate::intake::catalogue::Side;

/// `device:var/sota`, for messages.
pub(super) fn label(side: Side, path: &str) -> String {
    format!("{}:{path}", side.as_str())
}

/// `a/b/c` -> (`a/b`, `c`); `c` -> (``, `c`).
pub(super) fn split(rel: &str) -> (&str, &str) {
    rel.rsplit_once('/').unwrap_or(("", rel))
}

/// Folders opened with [`DIR_FLAGS`] never follow a link, and are folders.
pub(super) const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// (device, inode): what a file is, whatever the path that reached it.
#[allow(clippy::unnecessary_cast)]
pub(super) fn identity(st: &rfs::Stat) -> (u64, u64) {
    (st.st_dev as u64, st.st_ino as u64)
}

/// The folders a run holds open: the roots, each folder below them opened
/// from its parent's handle (never through a link), and the manifest's
/// folder; keyed by side and path relative to the root (`""` is the
/// root). A folder found missing is remembered as missing.
#[derive(Debug, Default)]
pub(super) struct Opened {
    pub(super) fds: Vec<OwnedFd>,
    /// (device, inode) of each.
    pub(super) ids: Vec<(u64, u64)>,
    /// How each is named in messages.
    pub(super) shown: Vec<PathBuf>,
    pub(super) at: BTreeMap<(Side, String), Option<usize>>,
}

impl Opened {
    pub(super) fn push(&mut self, fd: OwnedFd, shown: PathBuf) -> io::Result<usize> {
        let id = identity(&rfs::fstat(&fd)?);
        self.fds.push(fd);
        self.ids.push(id);
        self.shown.push(shown);
        Ok(self.fds.len() - 1)
    }

    /// The handle of folder `i` (an index this value gave).
    pub(super) fn fd(&self, i: usize) -> Result<BorrowedFd<'_>> {
        self.fds
            .get(i)
            .map(AsFd::as_fd)
            .ok_or_else(|| Error::Invalid(format!("internal error: no folder handle {i}")))
    }

    pub(super) fn shown(&self, i: usize, name: &str) -> PathBuf {
        self.shown
            .get(i)
            .map(|p| p.join(name))
            .unwrap_or_else(|| PathBuf::from(name))
    }

    /// Folder `rel` of `side`, opened from the root one name at a time;
    /// `None` when it or a folder above it does not exist. Anything else
    /// than a folder on the way (a link, a file) is refused.
    pub(super) fn get(&mut self, side: Side, rel: &str) -> Result<Option<usize>> {
        if let Some(found) = self.at.get(&(side, rel.to_string())) {
            return Ok(*found);
        }
        let (parent, name) = split(rel);
        if rel.is_empty() || name.is_empty() {
            return Err(Error::Invalid(format!(
                "internal error: {} has no root handle",
                label(side, rel)
            )));
        }
        let found = match self.get(side, parent)? {
            None => None,
            Some(p) => match rfs::openat(self.fd(p)?, name, DIR_FLAGS, Mode::empty()) {
                Ok(fd) => {
                    let shown = self.shown(p, name);
                    Some(
                        self.push(fd, shown.clone())
                            .map_err(|e| Error::io("look at", &shown, e))?,
                    )
                }
                Err(Errno::NOENT) => None,
                Err(Errno::LOOP | Errno::NOTDIR) => {
                    return Err(Error::Invalid(format!(
                        "{} exists and is not a folder; remove it",
                        label(side, rel)
                    )))
                }
                Err(e) => return Err(Error::io("open", &self.shown(p, name), e.into())),
            },
        };
        self.at.insert((side, rel.to_string()), found);
        Ok(found)
    }

    /// [`Opened::get`] for the write phase: the folder must be the one the
    /// check phase looked at (`looked`), not another swapped in since.
    pub(super) fn get_same(
        &mut self,
        side: Side,
        rel: &str,
        looked: &Opened,
    ) -> Result<Option<usize>> {
        let (parent, _) = split(rel);
        if !rel.is_empty() {
            self.get_same(side, parent, looked)?;
        }
        let now = self.get(side, rel)?;
        let before = looked
            .at
            .get(&(side, rel.to_string()))
            .copied()
            .flatten()
            .and_then(|i| looked.ids.get(i));
        let now_id = now.and_then(|i| self.ids.get(i));
        match (before, now_id) {
            (Some(a), Some(b)) if a != b => Err(Error::Invalid(format!(
                "{} was replaced by another folder while this run was staging; nothing was written: run again",
                label(side, rel)
            ))),
            (Some(_), None) => Err(Error::Invalid(format!(
                "{} was removed while this run was staging; nothing was written: run again",
                label(side, rel)
            ))),
            _ => Ok(now),
        }
    }
}

/// Looks at a name in a folder, without following a link.
pub(super) fn stat_in(dir: BorrowedFd<'_>, name: &str) -> io::Result<Option<rfs::Stat>> {
    match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub(super) fn file_type(st: &rfs::Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode)
}

#[allow(clippy::unnecessary_cast)]
pub(super) fn mode_of(st: &rfs::Stat) -> u32 {
    st.st_mode as u32 & 0o7777
}

/// Refuses a folder opened under both roots (the same device and inode).
pub(super) fn check_shared_folders(looked: &Opened) -> Result<()> {
    let mut device = BTreeMap::new();
    for ((side, rel), i) in &looked.at {
        if let (Side::Device, Some(i)) = (side, i) {
            if let Some(id) = looked.ids.get(*i) {
                device.insert(*id, rel.as_str());
            }
        }
    }
    for ((side, rel), i) in &looked.at {
        let (Side::Host, Some(i)) = (side, i) else {
            continue;
        };
        let Some(shared) = looked.ids.get(*i).and_then(|id| device.get(id)) else {
            continue;
        };
        let name = |side: Side, rel: &str| {
            if rel.is_empty() {
                format!("the {} root", side.as_str())
            } else {
                label(side, rel)
            }
        };
        return Err(Error::Usage(format!(
            "{} and {} are the same folder (a bind mount or another path to it): the host's secrets would land in the image; give two separate folders",
            name(Side::Host, rel),
            name(Side::Device, shared)
        )));
    }
    Ok(())
}
