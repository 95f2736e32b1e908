//! A `Session`: one locked output folder for a run of several
//! transactions (`device-certs`' batches), its appends, reads, removals
//! and streamed files.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use super::leftovers::recover_in;
use super::lock::{add_root, lock_roots, LockedRoot};
use super::opened::{file_type, split, stat_in, Opened};
use super::transaction::transaction;
use super::types::{Applied, Options, Roots, Step};
use super::undo::Undo;
use super::writer::{create_root, fill_file, set_mtime, set_mtime_path, temp_file_name};
use crate::error::{Error, Result};
use crate::escape::escape;
use crate::intake::catalogue::Side;
use crate::plan::files::{Plan, MODE_FILE, TEMP};

/// One output folder held for a run made of several transactions
/// (`device-certs`' batches): created when missing and locked once for the
/// whole run; each [`Session::apply`] is all or nothing on its own and
/// does not look for leftovers (a run does that once, with
/// [`Session::recover`], for the folders it will write to: listing the
/// root for every batch made a run quadratic). Besides plans, it appends
/// to, truncates, reads and removes files below the root and writes
/// streamed files, always through folder handles opened without following
/// a link. The lock goes when the session is dropped.
#[derive(Debug)]
pub struct Session {
    locked: LockedRoot,
    /// Roots and their parents created by path, parents first.
    created_roots: Vec<PathBuf>,
}

impl Session {
    /// Creates `root` when missing and locks it (waiting up to
    /// `lock_timeout`): the root of both sides of the plans applied.
    /// `waiting` is told once, when another run holds it.
    pub fn open(root: &Path, lock_timeout: Duration, waiting: Option<fn(&str)>) -> Result<Session> {
        let created_roots = create_root(root)?;
        let roots = Roots {
            device: root,
            host: Some(root),
        };
        let locked = lock_roots(&roots, lock_timeout, false, waiting).and_then(|mut locks| {
            locks.pop().ok_or_else(|| {
                Error::Invalid(format!(
                    "internal error: `{}` was not locked",
                    escape(&root.display().to_string())
                ))
            })
        });
        match locked {
            Ok(locked) => Ok(Session {
                locked,
                created_roots,
            }),
            Err(e) => {
                for dir in created_roots.iter().rev() {
                    let _ = fs::remove_dir(dir);
                }
                Err(e)
            }
        }
    }

    /// The root as the user named it, joined with `rel`, for messages.
    pub fn shown(&self, rel: &str) -> PathBuf {
        if rel.is_empty() {
            self.locked.shown.clone()
        } else {
            self.locked.shown.join(rel)
        }
    }

    fn opened(&self) -> Result<Opened> {
        let mut opened = Opened::default();
        add_root(&mut opened, &self.locked)?;
        Ok(opened)
    }

    /// Folder `rel` below the root (`""`: the root), opened one name at a
    /// time; `None` when it is missing.
    fn folder(&self, rel: &str) -> Result<Option<(Opened, usize)>> {
        let mut opened = self.opened()?;
        let found = if rel.is_empty() {
            opened
                .at
                .get(&(Side::Host, String::new()))
                .copied()
                .flatten()
        } else {
            opened.get(Side::Host, rel)?
        };
        Ok(found.map(|i| (opened, i)))
    }

    /// Applies `plan` (all or nothing), under the lock this session holds.
    pub fn apply(&self, plan: &Plan, opts: &Options) -> Result<Applied> {
        self.apply_with(plan, opts, &|_| Ok(()))
    }

    /// [`Session::apply`], calling `hook` before each step.
    pub fn apply_with(
        &self,
        plan: &Plan,
        opts: &Options,
        hook: &dyn Fn(Step) -> io::Result<()>,
    ) -> Result<Applied> {
        let mut undo = Undo::default();
        let result = (|| -> Result<Applied> {
            let mut looked = self.opened()?;
            add_root(&mut undo.held, &self.locked)?;
            transaction(plan, &mut looked, None, opts, hook, false, &mut undo)
        })();
        undo.settle(plan, opts, result)
    }

    /// Removes what a killed run left in folder `rel` (its temporaries
    /// and moved-aside files, the names only this tool makes); a missing
    /// folder holds none. Returns how many.
    pub fn recover(&self, rel: &str) -> Result<usize> {
        match self.folder(rel)? {
            Some((opened, i)) => recover_in(opened.fd(i)?, &opened.shown(i, ""), None),
            None => Ok(0),
        }
    }

    /// True when `rel` is a regular file (never through a link).
    pub fn is_file(&self, rel: &str) -> Result<bool> {
        let (parent, name) = split(rel);
        let Some((opened, i)) = self.folder(parent)? else {
            return Ok(false);
        };
        let st =
            stat_in(opened.fd(i)?, name).map_err(|e| Error::io("look at", &self.shown(rel), e))?;
        Ok(st.is_some_and(|st| file_type(&st) == FileType::RegularFile))
    }

    /// Removes the file `rel`; false when it was not there.
    pub fn remove(&self, rel: &str) -> Result<bool> {
        let (parent, name) = split(rel);
        let Some((opened, i)) = self.folder(parent)? else {
            return Ok(false);
        };
        match rfs::unlinkat(opened.fd(i)?, name, AtFlags::empty()) {
            Ok(()) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(Error::io("remove", &self.shown(rel), e.into())),
        }
    }

    /// Opens the regular file `name` of the root for reading; `None` when
    /// it is missing.
    pub fn open_read(&self, name: &str) -> Result<Option<File>> {
        let shown = self.shown(name);
        match rfs::openat(
            self.locked.file.as_fd(),
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
            Mode::empty(),
        ) {
            Ok(fd) => {
                let st = rfs::fstat(&fd).map_err(|e| Error::io("look at", &shown, e.into()))?;
                if file_type(&st) != FileType::RegularFile {
                    return Err(Error::Invalid(format!(
                        "`{}` is not a regular file; remove it",
                        escape(&shown.display().to_string())
                    )));
                }
                Ok(Some(File::from(fd)))
            }
            Err(Errno::NOENT) => Ok(None),
            Err(Errno::LOOP) => Err(Error::Invalid(format!(
                "`{}` is a symbolic link; remove it",
                escape(&shown.display().to_string())
            ))),
            Err(e) => Err(Error::io("open", &shown, e.into())),
        }
    }

    /// Appends `bytes` to the file `name` of the root (created 0644 when
    /// missing), synced when `sync`; returns its length before, for
    /// [`Session::truncate`].
    pub fn append(&self, name: &str, bytes: &[u8], sync: bool) -> Result<u64> {
        let shown = self.shown(name);
        let fd = rfs::openat(
            self.locked.file.as_fd(),
            name,
            OFlags::WRONLY | OFlags::APPEND | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(MODE_FILE),
        )
        .map_err(|e| Error::io("open", &shown, e.into()))?;
        let st = rfs::fstat(&fd).map_err(|e| Error::io("look at", &shown, e.into()))?;
        if file_type(&st) != FileType::RegularFile {
            return Err(Error::Invalid(format!(
                "`{}` is not a regular file; remove it",
                escape(&shown.display().to_string())
            )));
        }
        let before = u64::try_from(st.st_size).unwrap_or(0);
        let mut file = File::from(fd);
        file.write_all(bytes)
            .map_err(|e| Error::io("append to", &shown, e))?;
        if sync {
            file.sync_data().map_err(|e| Error::io("sync", &shown, e))?;
            if before == 0 {
                let _ = rfs::fsync(self.locked.file.as_fd());
            }
        }
        Ok(before)
    }

    /// Cuts the file `name` of the root back to `len` bytes.
    pub fn truncate(&self, name: &str, len: u64) -> Result<()> {
        let shown = self.shown(name);
        let fd = rfs::openat(
            self.locked.file.as_fd(),
            name,
            OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io("open", &shown, e.into()))?;
        rfs::ftruncate(&fd, len).map_err(|e| Error::io("truncate", &shown, e.into()))
    }

    /// Writes the file `name` of the root from `fill`, streamed, through
    /// a temporary renamed into place (replacing what is there), with
    /// `mode` and the run's time; synced with `opts.sync`.
    pub fn write_streamed(
        &self,
        name: &str,
        mode: u32,
        opts: &Options,
        fill: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
    ) -> Result<()> {
        let shown = self.shown(name);
        let dir = self.locked.file.as_fd();
        let temp = temp_file_name(name, TEMP);
        let fd = rfs::openat(
            dir,
            temp.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| Error::io("create", &shown, e.into()))?;
        let written = (|| -> io::Result<()> {
            let mut out = io::BufWriter::new(File::from(fd));
            fill(&mut out)?;
            let mut file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
            fill_file(&mut file, mode, opts.epoch, opts.sync)
        })();
        if let Err(e) = written {
            let _ = rfs::unlinkat(dir, temp.as_str(), AtFlags::empty());
            return Err(Error::io("write", &shown, e));
        }
        rfs::renameat(dir, temp.as_str(), dir, name).map_err(|e| {
            let _ = rfs::unlinkat(dir, temp.as_str(), AtFlags::empty());
            Error::io("rename into place", &shown, e.into())
        })?;
        if opts.sync {
            let _ = rfs::fsync(dir);
        }
        Ok(())
    }

    /// After a failed run: removes the folders [`Session::open`] created,
    /// when they are empty.
    pub fn abandon(self) {
        let Session {
            locked,
            created_roots,
        } = self;
        drop(locked);
        for dir in created_roots.iter().rev() {
            let _ = fs::remove_dir(dir);
        }
    }

    /// After a successful run: the created folders get the run's time.
    pub fn finish(self, epoch: i64) {
        set_mtime(self.locked.file.as_fd(), epoch);
        for dir in self.created_roots.iter().rev() {
            set_mtime_path(dir, epoch);
        }
    }
}
