//! Applying a plan: the only module that writes files (design.md section 5).
//!
//! All or nothing. A run first takes an advisory lock on its roots (two
//! runs on the same roots take turns), removes what an earlier run that
//! was killed left behind (its temporaries, files it had moved aside),
//! then looks at and compares every target; nothing is touched while a
//! conflict remains. Then each new file, the manifest included, is written
//! to a temporary name in its final folder (mode, mtime, and fsync when
//! asked), and only when all are written are they renamed into place. On
//! any failure the temporaries are removed, replaced and removed files are
//! put back, folder modes are set back, created folders are removed: the
//! roots and the manifest are as they were.
//!
//! Symbolic links are never followed below a root. A root given as a link
//! is resolved once, and every folder below it is opened from its parent's
//! handle, one name at a time, with `O_NOFOLLOW | O_DIRECTORY`; every
//! file is created, renamed and removed relative to its folder's handle.
//! The folders are looked at when the run checks, and opened again when it
//! writes: a folder swapped for a link in between fails the run (nothing
//! is written through the link), and so does one swapped for another
//! folder. The two roots must not share a folder, which paths alone cannot
//! tell (a bind mount): the device and inode numbers of every folder a run
//! opens in one root are compared with those of the other.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs::{self, DirBuilder, File};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::aktualizr::paths::OWNED_DIRS;
use crate::error::{Error, Result};
use crate::escape::escape;
use crate::intake::catalogue::Side;
use crate::plan::files::{is_within, leftover, Plan, MODE_DIR, MODE_FILE, OLD, TEMP};

/// The longest a run waits for another run's lock: one day. A longer wait
/// asked for is cut to it.
pub const MAX_LOCK_TIMEOUT: Duration = Duration::from_secs(86_400);

/// Where the two roots are.
#[derive(Debug, Clone, Copy)]
pub struct Roots<'a> {
    pub device: &'a Path,
    pub host: Option<&'a Path>,
}

impl Roots<'_> {
    /// The root of one side, when it was given.
    pub fn get(&self, side: Side) -> Option<&Path> {
        match side {
            Side::Device => Some(self.device),
            Side::Host => self.host,
        }
    }
}

/// How a run writes.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Every mtime.
    pub epoch: i64,
    /// Replace files and folder modes that differ, and remove files of the
    /// tool that this plan does not stage.
    pub force: bool,
    /// fsync every file written, then each changed folder once.
    pub sync: bool,
    /// How long to wait for another run that holds the roots (at most
    /// [`MAX_LOCK_TIMEOUT`]).
    pub lock_timeout: Duration,
    /// Told once, as the run starts to wait for another run that holds a
    /// root, whom it waits for and how long at most (the library does not
    /// print: the command line says it on standard error).
    pub waiting: Option<fn(&str)>,
}

/// A file written with the plan, outside the roots, in the same
/// transaction: the manifest.
#[derive(Debug, Clone, Copy)]
pub struct Outside<'a> {
    pub path: &'a Path,
    pub bytes: &'a [u8],
    pub mode: u32,
}

/// What a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// Files written (new or replaced).
    pub written: usize,
    /// Files that were already there with the same bytes and mode.
    pub unchanged: usize,
    /// Files of the tool that this plan does not stage, removed.
    pub removed: usize,
    /// Leftovers of an interrupted run, cleaned up.
    pub recovered: usize,
}

/// A step of the write, for tests that inject a failure at each one.
/// Files are numbered as in the plan; the outside file comes after them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    CreateDir(usize),
    /// Between creating a folder and setting its mode.
    SetDirMode(usize),
    WriteTemp(usize),
    Rename(usize),
    /// Removing a file the plan no longer stages (index into `plan.retired`).
    Remove(usize),
}

/// Applies `plan` under `roots`, with `outside` (the manifest) in the
/// same transaction.
pub fn apply(
    plan: &Plan,
    roots: &Roots<'_>,
    outside: Option<&Outside<'_>>,
    opts: &Options,
) -> Result<Applied> {
    apply_with(plan, roots, outside, opts, &|_| Ok(()))
}

/// Writes one file atomically (temporary name, fsync, rename), with `mode`
/// and `epoch` as mtime: for `render`'s output, outside any root. Missing
/// folders above it are created as `stage` creates a root's (0755, never
/// the umask's), and removed again when the write fails.
pub fn write_file(path: &Path, bytes: &[u8], mode: u32, epoch: i64) -> Result<()> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let created = create_root(parent)?;
    let written = (|| {
        let temp = temp_name(path, TEMP);
        write_temp_path(&temp, bytes, mode, epoch)?;
        fs::rename(&temp, path).map_err(|e| {
            let _ = fs::remove_file(&temp);
            Error::io("rename into place", path, e)
        })
    })();
    if let Err(e) = written {
        for dir in created.iter().rev() {
            let _ = fs::remove_dir(dir);
        }
        return Err(e);
    }
    if let Ok(dir) = File::open(parent) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// What the check phase decided for one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Keep,
    Create,
    Replace,
}

/// `device:var/sota`, for messages.
fn label(side: Side, path: &str) -> String {
    format!("{}:{path}", side.as_str())
}

/// `a/b/c` -> (`a/b`, `c`); `c` -> (``, `c`).
fn split(rel: &str) -> (&str, &str) {
    rel.rsplit_once('/').unwrap_or(("", rel))
}

/// Folders opened with [`DIR_FLAGS`] never follow a link, and are folders.
const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// (device, inode): what a file is, whatever the path that reached it.
#[allow(clippy::unnecessary_cast)]
fn identity(st: &rfs::Stat) -> (u64, u64) {
    (st.st_dev as u64, st.st_ino as u64)
}

/// The folders a run holds open: the roots, each folder below them opened
/// from its parent's handle (never through a link), and the manifest's
/// folder; keyed by side and path relative to the root (`""` is the
/// root). A folder found missing is remembered as missing.
#[derive(Debug, Default)]
struct Opened {
    fds: Vec<OwnedFd>,
    /// (device, inode) of each.
    ids: Vec<(u64, u64)>,
    /// How each is named in messages.
    shown: Vec<PathBuf>,
    at: BTreeMap<(Side, String), Option<usize>>,
}

impl Opened {
    fn push(&mut self, fd: OwnedFd, shown: PathBuf) -> io::Result<usize> {
        let id = identity(&rfs::fstat(&fd)?);
        self.fds.push(fd);
        self.ids.push(id);
        self.shown.push(shown);
        Ok(self.fds.len() - 1)
    }

    /// The handle of folder `i` (an index this value gave).
    fn fd(&self, i: usize) -> Result<BorrowedFd<'_>> {
        self.fds
            .get(i)
            .map(AsFd::as_fd)
            .ok_or_else(|| Error::Invalid(format!("internal error: no folder handle {i}")))
    }

    fn shown(&self, i: usize, name: &str) -> PathBuf {
        self.shown
            .get(i)
            .map(|p| p.join(name))
            .unwrap_or_else(|| PathBuf::from(name))
    }

    /// Folder `rel` of `side`, opened from the root one name at a time;
    /// `None` when it or a folder above it does not exist. Anything else
    /// than a folder on the way (a link, a file) is refused.
    fn get(&mut self, side: Side, rel: &str) -> Result<Option<usize>> {
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
    fn get_same(&mut self, side: Side, rel: &str, looked: &Opened) -> Result<Option<usize>> {
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
fn stat_in(dir: BorrowedFd<'_>, name: &str) -> io::Result<Option<rfs::Stat>> {
    match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn file_type(st: &rfs::Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode)
}

#[allow(clippy::unnecessary_cast)]
fn mode_of(st: &rfs::Stat) -> u32 {
    st.st_mode as u32 & 0o7777
}

/// [`apply`], calling `hook` before each step; a hook error fails the step.
pub fn apply_with(
    plan: &Plan,
    roots: &Roots<'_>,
    outside: Option<&Outside<'_>>,
    opts: &Options,
    hook: &dyn Fn(Step) -> io::Result<()>,
) -> Result<Applied> {
    for file in &plan.files {
        if roots.get(file.side).is_none() {
            return Err(Error::Usage(format!(
                "the plan has {} files but no {0} root was given",
                file.side.as_str()
            )));
        }
    }
    let both_sides = plan.files.iter().any(|f| f.side == Side::Device)
        && plan.files.iter().any(|f| f.side == Side::Host);

    // 0. Create the missing roots, then hold them: a second run on the
    // same roots waits here until this one is done.
    let mut undo = Undo::default();
    let locked = (|| -> Result<Vec<LockedRoot>> {
        for root in [Some(roots.device), roots.host].into_iter().flatten() {
            undo.created_roots.extend(create_root(root)?);
        }
        lock_roots(roots, opts.lock_timeout, both_sides, opts.waiting)
    })();
    let locked = match locked {
        Ok(locks) => locks,
        Err(e) => {
            undo.roll_back();
            return Err(e);
        }
    };
    let result = (|| -> Result<Applied> {
        let mut looked = Opened::default();
        for root in &locked {
            add_root(&mut looked, root)?;
            add_root(&mut undo.held, root)?;
        }
        let recovered = recover(plan, &mut looked, outside)?;
        let mut applied = transaction(
            plan,
            &mut looked,
            outside,
            opts,
            hook,
            both_sides,
            &mut undo,
        )?;
        applied.recovered = recovered;
        Ok(applied)
    })();
    let applied = undo.settle(plan, opts, result);
    drop(undo);
    drop(locked);
    applied
}

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

/// Makes a locked root the folder `""` of its sides in `opened`.
fn add_root(opened: &mut Opened, root: &LockedRoot) -> Result<()> {
    let fd = root
        .file
        .try_clone()
        .map_err(|e| Error::io("open", &root.shown, e))?;
    let i = opened
        .push(OwnedFd::from(fd), root.shown.clone())
        .map_err(|e| Error::io("look at", &root.shown, e))?;
    for side in &root.sides {
        opened.at.insert((*side, String::new()), Some(i));
    }
    Ok(())
}

/// The folder of the outside file, opened by its path, and its name.
fn open_outside(out: &Outside<'_>) -> Result<(OwnedFd, String, PathBuf)> {
    let name = out
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| {
            Error::io(
                "write the manifest to",
                out.path,
                io::Error::other("the path names no file"),
            )
        })?;
    let folder = out
        .path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let fd = rfs::openat(
        rfs::CWD,
        folder,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io("write the manifest in", folder, e.into()))?;
    Ok((fd, name, folder.to_path_buf()))
}

/// True when the file `name` in `dir` holds exactly `bytes`.
fn same_bytes(dir: BorrowedFd<'_>, name: &str, bytes: &[u8], shown: &Path) -> Result<bool> {
    let fd = rfs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
    )
    .map_err(|e| Error::io("read", shown, e.into()))?;
    let mut held = Vec::with_capacity(bytes.len());
    File::from(fd)
        .take(bytes.len() as u64 + 1)
        .read_to_end(&mut held)
        .map_err(|e| Error::io("read", shown, e))?;
    Ok(held == bytes)
}

/// One file to write: in folder `dir` (a handle of [`Undo::held`]), as
/// `name`.
#[derive(Debug)]
struct FileAction<'p> {
    dir: usize,
    name: String,
    action: Action,
    bytes: &'p [u8],
    mode: u32,
}

/// Looks at everything, then changes it; `undo` records each change.
fn transaction(
    plan: &Plan,
    looked: &mut Opened,
    outside: Option<&Outside<'_>>,
    opts: &Options,
    hook: &dyn Fn(Step) -> io::Result<()>,
    both_sides: bool,
    undo: &mut Undo,
) -> Result<Applied> {
    // 1. Look at everything; change nothing.
    let mut conflicts = Vec::new();
    let mut dir_actions = Vec::new();
    for dir in &plan.dirs {
        let (parent, _) = split(&dir.path);
        // A missing parent means a missing folder: it is created.
        let action = match looked.get(dir.side, parent)? {
            None => Action::Create,
            Some(_) => match looked.get(dir.side, &dir.path)? {
                None => Action::Create,
                Some(i) => {
                    let fd = looked.fd(i)?;
                    let st = rfs::fstat(fd)
                        .map_err(|e| Error::io("look at", &looked.shown(i, ""), e.into()))?;
                    let mode = mode_of(&st);
                    if mode == dir.mode() {
                        Action::Keep
                    } else if opts.force || dir.owned() {
                        Action::Replace
                    } else {
                        conflicts.push(format!(
                            "{} exists with mode {mode:04o}, not {:04o}",
                            label(dir.side, &dir.path),
                            dir.mode()
                        ));
                        Action::Keep
                    }
                }
            },
        };
        dir_actions.push(action);
    }
    let mut files = Vec::new();
    for file in &plan.files {
        let (parent, name) = split(&file.path);
        let bytes = file.contents.expose().as_slice();
        let action = match looked.get(file.side, parent)? {
            None => Action::Create,
            Some(p) => {
                let shown = looked.shown(p, name);
                match stat_in(looked.fd(p)?, name).map_err(|e| Error::io("look at", &shown, e))? {
                    None => Action::Create,
                    Some(st) if file_type(&st) == FileType::RegularFile => {
                        let mode = mode_of(&st);
                        let same_mode = mode == file.mode();
                        let same_bytes = u64::try_from(st.st_size).ok() == Some(bytes.len() as u64)
                            && same_bytes(looked.fd(p)?, name, bytes, &shown)?;
                        if same_mode && same_bytes {
                            Action::Keep
                        } else if opts.force {
                            Action::Replace
                        } else {
                            conflicts.push(format!(
                                "{} exists with {}",
                                label(file.side, &file.path),
                                if same_bytes {
                                    format!("mode {mode:04o}, not {:04o}", file.mode())
                                } else {
                                    "different content".to_string()
                                }
                            ));
                            Action::Keep
                        }
                    }
                    Some(_) => {
                        return Err(Error::Invalid(format!(
                            "{} exists and is not a regular file (a folder or a link); remove it",
                            label(file.side, &file.path)
                        )))
                    }
                }
            }
        };
        files.push((file.side, parent, name, action, bytes, file.mode()));
    }
    // Files of the tool that this plan does not stage (another method's,
    // a hardware ID no longer given): only with force, and never a folder.
    let mut retired = Vec::new();
    for (side, rel) in &plan.retired {
        if !looked.at.contains_key(&(*side, String::new())) {
            continue;
        }
        let (parent, name) = split(rel);
        let Some(p) = looked.get(*side, parent)? else {
            continue;
        };
        let shown = looked.shown(p, name);
        match stat_in(looked.fd(p)?, name).map_err(|e| Error::io("look at", &shown, e))? {
            Some(st) if file_type(&st) == FileType::Directory => {}
            Some(_) if opts.force => retired.push((*side, rel.as_str())),
            Some(_) => conflicts.push(format!(
                "{} is not staged by this run (left by a run of another method or with other options); it would be removed",
                label(*side, rel)
            )),
            None => {}
        }
    }
    if !conflicts.is_empty() {
        return Err(Error::Conflicts(conflicts));
    }
    // The two roots share no folder: a host root that is a bind mount of
    // a folder of the device root (or the other way round) has another
    // path, but the same device and inode numbers.
    if both_sides {
        check_shared_folders(looked)?;
    }
    // The manifest replaces whatever manifest is there: it is the tool's
    // (the command checked that it reads as one).
    let mut outside_action = None;
    if let Some(out) = outside {
        let (fd, name, folder) = open_outside(out)?;
        let st = stat_in(fd.as_fd(), &name).map_err(|e| Error::io("look at", out.path, e))?;
        let action = match st {
            Some(st) if file_type(&st) == FileType::RegularFile => Action::Replace,
            Some(_) => {
                return Err(Error::io(
                    "write the manifest to",
                    out.path,
                    io::Error::other("it is not a regular file; remove it"),
                ))
            }
            None => Action::Create,
        };
        let i = undo
            .held
            .push(fd, folder)
            .map_err(|e| Error::io("look at", out.path, e))?;
        outside_action = Some(FileAction {
            dir: i,
            name,
            action,
            bytes: out.bytes,
            mode: out.mode,
        });
    }

    // The looked-at folders are compared by identity from here on: their
    // handles go, so a run holds one set of handles, not two.
    looked.fds.clear();

    // 2. Open every folder again from the roots (a folder swapped for a
    // link or another folder since it was looked at fails the run here),
    // create the missing ones, set their modes, write temporaries.
    for (i, (dir, action)) in plan.dirs.iter().zip(&dir_actions).enumerate() {
        let (parent, name) = split(&dir.path);
        match action {
            Action::Create => {
                let p = undo
                    .held
                    .get_same(dir.side, parent, looked)?
                    .ok_or_else(|| {
                        Error::Invalid(format!(
                        "{} was removed while this run was staging; nothing was written: run again",
                        label(dir.side, parent)
                    ))
                    })?;
                let shown = undo.held.shown(p, name);
                hook(Step::CreateDir(i)).map_err(|e| Error::io("create folder", &shown, e))?;
                // Created with its mode (the umask can only narrow it), so
                // a run killed before the chmod leaves no wider folder.
                rfs::mkdirat(undo.held.fd(p)?, name, Mode::from_raw_mode(dir.mode()))
                    .map_err(|e| Error::io("create folder", &shown, e.into()))?;
                undo.created.push((p, name.to_string(), None));
                let made = undo.held.get(dir.side, &dir.path)?.ok_or_else(|| {
                    Error::io("create folder", &shown, io::Error::other("it is gone"))
                })?;
                if let Some(last) = undo.created.last_mut() {
                    last.2 = Some(made);
                }
                hook(Step::SetDirMode(i)).map_err(|e| Error::io("set the mode of", &shown, e))?;
                rfs::fchmod(undo.held.fd(made)?, Mode::from_raw_mode(dir.mode()))
                    .map_err(|e| Error::io("set the mode of", &shown, e.into()))?;
            }
            Action::Replace => {
                let d = undo
                    .held
                    .get_same(dir.side, &dir.path, looked)?
                    .ok_or_else(|| {
                        Error::Invalid(format!(
                        "{} was removed while this run was staging; nothing was written: run again",
                        label(dir.side, &dir.path)
                    ))
                    })?;
                let shown = undo.held.shown(d, "");
                let fd = undo.held.fd(d)?;
                let old =
                    mode_of(&rfs::fstat(fd).map_err(|e| Error::io("look at", &shown, e.into()))?);
                rfs::fchmod(fd, Mode::from_raw_mode(dir.mode()))
                    .map_err(|e| Error::io("set the mode of", &shown, e.into()))?;
                undo.moded.push((d, old));
            }
            Action::Keep => {
                undo.held.get_same(dir.side, &dir.path, looked)?;
            }
        }
    }
    let mut actions = Vec::new();
    for (side, parent, name, action, bytes, mode) in files {
        let dir = undo.held.get_same(side, parent, looked)?.ok_or_else(|| {
            Error::Invalid(format!(
                "{} was removed while this run was staging; nothing was written: run again",
                label(side, parent)
            ))
        })?;
        actions.push(FileAction {
            dir,
            name: name.to_string(),
            action,
            bytes,
            mode,
        });
    }
    actions.extend(outside_action);
    let mut pending = Vec::new();
    for (i, file) in actions.iter().enumerate() {
        if file.action == Action::Keep {
            continue;
        }
        let temp = temp_file_name(&file.name, TEMP);
        let shown = undo.held.shown(file.dir, &temp);
        hook(Step::WriteTemp(i)).map_err(|e| Error::io("write", &shown, e))?;
        let k = undo.temps.len();
        undo.temps.push(Some((file.dir, temp.clone())));
        write_temp(
            undo.held.fd(file.dir)?,
            &temp,
            &shown,
            file.bytes,
            file.mode,
            opts,
        )?;
        pending.push((i, k, temp, file));
    }
    // 3. Rename into place; move retired files aside.
    for (i, k, temp, file) in &pending {
        let dir = undo.held.fd(file.dir)?;
        let shown = undo.held.shown(file.dir, &file.name);
        hook(Step::Rename(*i)).map_err(|e| Error::io("rename into place", &shown, e))?;
        if file.action == Action::Replace {
            let old = temp_file_name(&file.name, OLD);
            rfs::renameat(dir, file.name.as_str(), dir, old.as_str())
                .map_err(|e| Error::io("move aside", &shown, e.into()))?;
            undo.moved_aside.push((file.dir, old, file.name.clone()));
        }
        rfs::renameat(dir, temp.as_str(), dir, file.name.as_str())
            .map_err(|e| Error::io("rename into place", &shown, e.into()))?;
        // By its index: a scan of the list per rename made a run of
        // 10,000 bundles take a minute.
        if let Some(t) = undo.temps.get_mut(*k) {
            *t = None;
        }
        undo.placed.push((file.dir, file.name.clone()));
    }
    for (i, (side, rel)) in retired.iter().enumerate() {
        let (parent, name) = split(rel);
        let dir = undo.held.get_same(*side, parent, looked)?.ok_or_else(|| {
            Error::Invalid(format!(
                "{} was removed while this run was staging; nothing was written: run again",
                label(*side, parent)
            ))
        })?;
        let shown = undo.held.shown(dir, name);
        hook(Step::Remove(i)).map_err(|e| Error::io("remove", &shown, e))?;
        let old = temp_file_name(name, OLD);
        let fd = undo.held.fd(dir)?;
        rfs::renameat(fd, name, fd, old.as_str())
            .map_err(|e| Error::io("remove", &shown, e.into()))?;
        undo.moved_aside.push((dir, old, name.to_string()));
        undo.removed.push((dir, *side, rel.to_string()));
    }
    let outside_written = usize::from(outside.is_some());
    Ok(Applied {
        written: pending.len().saturating_sub(outside_written),
        unchanged: actions.len() - pending.len(),
        removed: retired.len(),
        recovered: 0,
    })
}

/// Refuses a folder opened under both roots (the same device and inode).
fn check_shared_folders(looked: &Opened) -> Result<()> {
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

/// What to take back when a run fails half-way, and the folders the write
/// phase opened (every change is made through one of them).
#[derive(Debug, Default)]
struct Undo {
    held: Opened,
    /// Roots and their parents created by path, parents first.
    created_roots: Vec<PathBuf>,
    /// (parent, name, the folder's own handle once opened).
    created: Vec<(usize, String, Option<usize>)>,
    /// (folder, its mode before).
    moded: Vec<(usize, u32)>,
    /// (folder, name), `None` once renamed into place.
    temps: Vec<Option<(usize, String)>>,
    placed: Vec<(usize, String)>,
    /// (folder, backup name, original name) of replaced and removed files.
    moved_aside: Vec<(usize, String, String)>,
    /// (folder, side, path) of removed files.
    removed: Vec<(usize, Side, String)>,
}

impl Undo {
    /// Ends a transaction: [`Undo::finish`] when it succeeded, or
    /// [`Undo::roll_back`] when it failed; returns its result.
    fn settle(&self, plan: &Plan, opts: &Options, result: Result<Applied>) -> Result<Applied> {
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
    fn roll_back(&self) {
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
    fn finish(&self, plan: &Plan, opts: &Options) {
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

/// Removes what a killed run of this tool left in the folders the plan
/// writes to: its temporaries (`.NAME.sota-stage-PID.tmp`) and the files it
/// had moved aside (`.NAME.sota-stage-PID.old`), each put back where the
/// original is missing (the run that moved it never finished). Only these
/// names, which nothing but this tool makes; in the manifest's folder only
/// those of the manifest. Returns how many were found.
fn recover(plan: &Plan, looked: &mut Opened, outside: Option<&Outside<'_>>) -> Result<usize> {
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
fn recover_in(dir: BorrowedFd<'_>, shown: &Path, only: Option<&str>) -> Result<usize> {
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

/// A root, resolved, opened and locked: which sides it is the root of.
#[derive(Debug)]
struct LockedRoot {
    file: File,
    shown: PathBuf,
    sides: Vec<Side>,
}

/// A root before it is locked: its resolved path, identity, the path as
/// given, and the sides it is the root of.
type RootFolder<'a> = (PathBuf, (u64, u64), &'a Path, Vec<Side>);

/// Takes an exclusive advisory lock (`flock(2)`) on each root folder
/// itself: no lock file, nothing left in a tree. A root given as a link
/// is resolved first (the folder it names is the one written and locked).
/// Waits up to `timeout` (at most [`MAX_LOCK_TIMEOUT`]) for another run
/// that holds one. Two roots that are the same folder, under two paths
/// (a bind mount), are refused when the plan writes to both. The lock goes
/// with the returned files (closed at the end of the run, or by the kernel
/// when it is killed). `waiting` is told once, as the run starts to wait.
fn lock_roots(
    roots: &Roots<'_>,
    timeout: Duration,
    both_sides: bool,
    waiting: Option<fn(&str)>,
) -> Result<Vec<LockedRoot>> {
    let timeout = timeout.min(MAX_LOCK_TIMEOUT);
    // (resolved path, identity, path as given, sides).
    let mut folders: Vec<RootFolder<'_>> = Vec::new();
    for (side, root) in [(Side::Device, Some(roots.device)), (Side::Host, roots.host)] {
        let Some(root) = root else { continue };
        let real = fs::canonicalize(root).map_err(|e| Error::io("resolve", root, e))?;
        let id = identity(&rfs::stat(&real).map_err(|e| Error::io("look at", root, e.into()))?);
        if let Some(same) = folders.iter_mut().find(|f| f.1 == id) {
            if both_sides {
                return Err(Error::Usage(format!(
                    "the host root `{}` and the device root `{}` are the same folder (a bind mount or another path to it): the host's secrets would land in the image; give two separate folders",
                    escape(&roots.host.unwrap_or(Path::new("")).display().to_string()),
                    escape(&roots.device.display().to_string())
                )));
            }
            same.3.push(side);
            continue;
        }
        folders.push((real, id, root, vec![side]));
    }
    // Always in the same order, so two runs cannot hold one each.
    folders.sort();
    let deadline = Instant::now() + timeout;
    let mut locks = Vec::new();
    // Said once per run, whichever root it waits for first.
    let mut waiting = waiting;
    for (real, _, shown, sides) in folders {
        let file = lock_dir(&real, shown, deadline, timeout, &mut waiting)?;
        locks.push(LockedRoot {
            file,
            shown: shown.to_path_buf(),
            sides,
        });
    }
    Ok(locks)
}

/// What a run says as it starts to wait for the one that holds `path`.
fn waiting_text(path: &Path, holder: Option<u32>, timeout: Duration) -> String {
    let who = holder
        .map(|pid| format!(" (process {pid})"))
        .unwrap_or_default();
    format!(
        "waiting up to {} s for another sota-stage run{who} that holds `{}`",
        timeout.as_secs(),
        escape(&path.display().to_string())
    )
}

/// Locks the folder `real` (a resolved path; `shown` in messages), trying
/// again until `deadline`: every way round the loop ends by then;
/// `waiting` is taken (and called) the first time the run has to wait.
fn lock_dir(
    real: &Path,
    shown: &Path,
    deadline: Instant,
    timeout: Duration,
    waiting: &mut Option<fn(&str)>,
) -> Result<File> {
    use rustix::fs::{flock, FlockOperation};
    let locked_out = |ino: u64| Error::Locked {
        path: shown.to_path_buf(),
        holder: lock_holder(ino),
        waited: timeout,
    };
    loop {
        let fd = rfs::openat(rfs::CWD, real, DIR_FLAGS, Mode::empty())
            .map_err(|e| Error::io("lock", shown, e.into()))?;
        let held = identity(&rfs::fstat(&fd).map_err(|e| Error::io("lock", shown, e.into()))?);
        match flock(&fd, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {
                // The run that held it may have removed the folder (it had
                // created it and failed): lock the one that is there now.
                match rfs::statat(rfs::CWD, real, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(now) if identity(&now) == held => return Ok(File::from(fd)),
                    Ok(_) => {}
                    Err(Errno::NOENT) => {
                        create_root(real)?;
                    }
                    Err(e) => return Err(Error::io("lock", shown, e.into())),
                }
            }
            Err(Errno::WOULDBLOCK | Errno::INTR) => {
                if let Some(say) = waiting.take() {
                    say(&waiting_text(shown, lock_holder(held.1), timeout));
                }
            }
            Err(e) => return Err(Error::io("lock", shown, e.into())),
        }
        if Instant::now() >= deadline {
            return Err(locked_out(held.1));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The process that holds a `flock` on inode `ino`, from `/proc/locks`
/// (`1: FLOCK  ADVISORY  WRITE 4242 08:01:1234 0 EOF`), when it can tell.
fn lock_holder(ino: u64) -> Option<u32> {
    let locks = fs::read_to_string("/proc/locks").ok()?;
    locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (kind, pid, id) = (fields.get(1)?, fields.get(4)?, fields.get(5)?);
        let inode = id.rsplit(':').next()?;
        (*kind == "FLOCK" && inode == ino.to_string())
            .then(|| pid.parse().ok())
            .flatten()
    })
}

/// Creates a missing root and its missing parents, each with the folder
/// mode (never the umask's); returns what it created, parents first.
fn create_root(root: &Path) -> Result<Vec<PathBuf>> {
    let mut missing = Vec::new();
    let mut at = Some(root);
    while let Some(p) = at {
        if p.as_os_str().is_empty() || fs::symlink_metadata(p).is_ok() {
            break;
        }
        missing.push(p.to_path_buf());
        at = p.parent();
    }
    missing.reverse();
    let mut created = Vec::new();
    for dir in missing {
        let made = match DirBuilder::new().mode(MODE_DIR).create(&dir) {
            Ok(()) => {
                created.push(dir.clone());
                fs::set_permissions(&dir, fs::Permissions::from_mode(MODE_DIR))
                    .map_err(|e| Error::io("set the mode of", &dir, e))
            }
            // Another run made it a moment ago: it is theirs, not ours.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
            Err(e) => Err(Error::io("create folder", &dir, e)),
        };
        if let Err(e) = made {
            for d in created.iter().rev() {
                let _ = fs::remove_dir(d);
            }
            return Err(e);
        }
    }
    Ok(created)
}

/// `.NAME.sota-stage-PID.KIND`.
fn temp_file_name(name: &str, kind: &str) -> String {
    format!(".{name}.sota-stage-{}.{kind}", pid())
}

fn temp_name(path: &Path, kind: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(temp_file_name(&name, kind))
}

/// This process's id, asked of the kernel once.
fn pid() -> u32 {
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *PID.get_or_init(std::process::id)
}

/// Fills a new file: its bytes, its mode, `epoch` as its mtime, and an
/// fsync when asked. Removes it on failure.
fn fill(file: &mut File, bytes: &[u8], mode: u32, epoch: i64, sync: bool) -> io::Result<()> {
    file.write_all(bytes)?;
    fill_file(file, mode, epoch, sync)
}

/// A written file's mode, time and fsync.
fn fill_file(file: &mut File, mode: u32, epoch: i64, sync: bool) -> io::Result<()> {
    if mode != 0o600 {
        file.set_permissions(fs::Permissions::from_mode(mode))?;
    }
    file.set_modified(system_time(epoch))?;
    if sync {
        file.sync_all()?;
    }
    Ok(())
}

/// Creates the temporary `name` in `dir` (never through a link, never
/// over an existing file), 0600 whatever the umask, then sets its mode: a
/// secret is never readable by others, not even for a moment.
fn write_temp(
    dir: BorrowedFd<'_>,
    name: &str,
    shown: &Path,
    bytes: &[u8],
    mode: u32,
    opts: &Options,
) -> Result<()> {
    let fd = rfs::openat(
        dir,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .map_err(|e| Error::io("create", shown, e.into()))?;
    fill(&mut File::from(fd), bytes, mode, opts.epoch, opts.sync).map_err(|e| {
        let _ = rfs::unlinkat(dir, name, AtFlags::empty());
        Error::io("write", shown, e)
    })
}

/// [`write_temp`] by path, for [`write_file`]; always synced.
fn write_temp_path(temp: &Path, bytes: &[u8], mode: u32, epoch: i64) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(temp)
        .map_err(|e| Error::io("create", temp, e))?;
    fill(&mut file, bytes, mode, epoch, true).map_err(|e| {
        let _ = fs::remove_file(temp);
        Error::io("write", temp, e)
    })
}

fn system_time(epoch: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(epoch).unwrap_or(0))
}

fn mtime(epoch: i64) -> rfs::Timestamps {
    rfs::Timestamps {
        last_access: rfs::Timespec {
            tv_sec: 0,
            tv_nsec: rfs::UTIME_OMIT,
        },
        last_modification: rfs::Timespec {
            tv_sec: epoch.max(0),
            tv_nsec: 0,
        },
    }
}

/// Sets a folder's mtime (not its atime) through its handle. A folder's
/// time is not part of what is checked or verified, so a failure here is
/// not worth failing the run.
fn set_mtime(dir: BorrowedFd<'_>, epoch: i64) {
    let _ = rfs::futimens(dir, &mtime(epoch));
}

/// [`set_mtime`] by path, for the roots the run created.
fn set_mtime_path(path: &Path, epoch: i64) {
    let _ = rfs::utimensat(rfs::CWD, path, &mtime(epoch), AtFlags::SYMLINK_NOFOLLOW);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::files::{FileSpec, MODE_FILE, MODE_SECRET};
    use crate::plan::methods::Method;
    use crate::test_support::{tree, Node, TestDir};
    use std::cell::{Cell, RefCell};
    use std::collections::BTreeMap;
    use std::os::unix::fs::MetadataExt;

    fn opts(epoch: i64, force: bool) -> Options {
        Options {
            epoch,
            force,
            sync: false,
            lock_timeout: Duration::from_secs(5),
            waiting: None,
        }
    }

    fn file(side: Side, path: &str, bytes: &[u8], mode: u32) -> FileSpec {
        FileSpec::new(side, path, bytes.to_vec(), mode == MODE_SECRET)
    }

    fn plan() -> Plan {
        let files = vec![
            file(
                Side::Device,
                "usr/lib/sota/conf.d/20-x.toml",
                b"[a]\n",
                MODE_FILE,
            ),
            file(
                Side::Device,
                "var/sota/import/gateway.url",
                b"https://x",
                MODE_FILE,
            ),
            file(Side::Device, "var/sota/z.zip", b"zip", MODE_SECRET),
            file(Side::Host, "treehub.json", b"{}", MODE_SECRET),
        ];
        Plan::new(Method::DeviceCred, "0".repeat(64), files, Vec::new())
    }

    /// Every path under `dir` with its mode and, for files and links, its
    /// bytes and mtime. Folder times are left out: a folder's mtime follows
    /// every entry added or removed, and rollback does not restore it.
    fn snapshot(dir: &Path) -> BTreeMap<String, Node> {
        let mut nodes = tree(dir);
        for node in nodes.values_mut() {
            if node.bytes.is_none() {
                node.mtime = (0, 0);
            }
        }
        nodes
    }

    fn write_with_mode(path: &Path, bytes: &[u8], mode: u32) {
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, bytes).expect("write");
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
    }

    /// Roots to stage [`plan`] into, in a fresh folder. `populated`: both
    /// roots exist and hold files of their own, one file on each side that
    /// `--force` replaces, and a folder whose mode `--force` changes;
    /// otherwise the device root is empty and the host root does not exist
    /// (the run creates it).
    fn roots_for(populated: bool) -> TestDir {
        let dir = TestDir::new();
        let (dev, host) = (dir.join("d"), dir.join("h"));
        if populated {
            write_with_mode(&dev.join("etc/hostname"), b"rpi\n", 0o644);
            write_with_mode(
                &dev.join("usr/lib/sota/conf.d/20-x.toml"),
                b"[old]\n",
                0o644,
            );
            write_with_mode(
                &dev.join("usr/lib/sota/conf.d/10-other.toml"),
                b"[o]\n",
                0o644,
            );
            for (folder, mode) in [
                ("usr", 0o750),
                ("usr/lib", MODE_DIR),
                ("usr/lib/sota", MODE_DIR),
                ("usr/lib/sota/conf.d", MODE_DIR),
            ] {
                fs::set_permissions(dev.join(folder), fs::Permissions::from_mode(mode))
                    .expect("chmod");
            }
            write_with_mode(&host.join("treehub.json"), b"old", 0o600);
            write_with_mode(&host.join("notes.txt"), b"mine", 0o640);
        } else {
            fs::create_dir_all(&dev).expect("mkdir");
        }
        dir
    }

    #[test]
    fn writes_modes_and_times_exactly() {
        let s = TestDir::new();
        let (dev, host) = (s.join("d"), s.join("h"));
        let roots = Roots {
            device: &dev,
            host: Some(&host),
        };
        let applied = apply(&plan(), &roots, None, &opts(1_700_000_000, false)).expect("staged");
        assert_eq!(
            applied,
            Applied {
                written: 4,
                ..Applied::default()
            }
        );
        let meta = |p: &Path| fs::symlink_metadata(p).expect("exists");
        assert_eq!(meta(&dev.join("var/sota")).mode() & 0o7777, 0o700);
        assert_eq!(meta(&dev.join("var/sota/import")).mode() & 0o7777, 0o700);
        assert_eq!(
            meta(&dev.join("usr/lib/sota/conf.d")).mode() & 0o7777,
            0o755
        );
        assert_eq!(meta(&dev.join("var/sota/z.zip")).mode() & 0o7777, 0o600);
        assert_eq!(
            meta(&dev.join("var/sota/import/gateway.url")).mode() & 0o7777,
            0o644
        );
        assert_eq!(meta(&host.join("treehub.json")).mode() & 0o7777, 0o600);
        assert_eq!(meta(&dev.join("var/sota/z.zip")).mtime(), 1_700_000_000);
        assert_eq!(meta(&dev.join("var/sota")).mtime(), 1_700_000_000);
        // No temporary is left behind.
        assert!(snapshot(s.path())
            .keys()
            .all(|k| !k.contains("sota-stage-")));
        // A second run finds everything in place.
        let again = apply(&plan(), &roots, None, &opts(1_700_000_000, false)).expect("idempotent");
        assert_eq!(
            again,
            Applied {
                unchanged: 4,
                ..Applied::default()
            }
        );
    }

    /// [`plan`] applied with `hook` to new [`roots_for`]`(populated)`,
    /// with `--force` where they are populated: the folder, its snapshot
    /// from before, and the result.
    fn apply_to_fresh_roots(
        populated: bool,
        hook: &dyn Fn(Step) -> io::Result<()>,
    ) -> (TestDir, BTreeMap<String, Node>, Result<Applied>) {
        let dir = roots_for(populated);
        let (dev, host) = (dir.join("d"), dir.join("h"));
        let roots = Roots {
            device: &dev,
            host: Some(&host),
        };
        let before = snapshot(dir.path());
        let result = apply_with(&plan(), &roots, None, &opts(1, populated), hook);
        (dir, before, result)
    }

    /// A failure injected at each step of a run, one run per step: the
    /// step is reached (its failure fires exactly once), the run fails with
    /// it, and both roots are as they were before, byte for byte and mode
    /// for mode. Once from empty roots, once from populated ones with
    /// `--force`, where files are moved aside and must be put back.
    #[test]
    fn a_failure_at_any_step_leaves_the_roots_as_they_were() {
        let creates = |dirs: std::ops::Range<usize>| {
            dirs.flat_map(|i| [Step::CreateDir(i), Step::SetDirMode(i)])
        };
        let writes: Vec<Step> = (0..4)
            .map(Step::WriteTemp)
            .chain((0..4).map(Step::Rename))
            .collect();
        for (populated, created) in [(false, creates(0..7)), (true, creates(4..7))] {
            let expected: Vec<Step> = created.chain(writes.iter().copied()).collect();
            // Without a failure the run takes exactly these steps and
            // changes the roots: there is something to roll back.
            let taken = RefCell::new(Vec::new());
            let record = |at: Step| {
                taken.borrow_mut().push(at);
                Ok(())
            };
            let (dir, before, result) = apply_to_fresh_roots(populated, &record);
            result.expect("staged");
            assert_eq!(taken.into_inner(), expected, "populated={populated}");
            assert_ne!(snapshot(dir.path()), before, "populated={populated}");

            for step in expected {
                let fired = Cell::new(0);
                let fail = |at: Step| {
                    if at == step {
                        fired.set(fired.get() + 1);
                        Err(io::Error::other("injected"))
                    } else {
                        Ok(())
                    }
                };
                let (dir, before, result) = apply_to_fresh_roots(populated, &fail);
                let e = result.expect_err("a failed step fails the run");
                assert_eq!(fired.get(), 1, "{step:?} populated={populated}");
                assert!(e.to_string().contains("injected"), "{step:?}: {e}");
                assert_eq!(
                    snapshot(dir.path()),
                    before,
                    "{step:?} populated={populated}"
                );
            }
        }
    }

    #[test]
    fn a_different_file_is_a_conflict_unless_forced() {
        let s = TestDir::new();
        let dev = s.join("d");
        fs::create_dir_all(dev.join("var/sota/import")).expect("mkdir");
        fs::set_permissions(dev.join("var/sota"), fs::Permissions::from_mode(0o700))
            .expect("chmod");
        fs::set_permissions(
            dev.join("var/sota/import"),
            fs::Permissions::from_mode(0o700),
        )
        .expect("chmod");
        fs::write(dev.join("var/sota/import/gateway.url"), b"https://other").expect("write");
        let mut p = plan();
        p.files.retain(|f| f.side == Side::Device);
        let roots = Roots {
            device: &dev,
            host: None,
        };
        let before = snapshot(s.path());
        let e = apply(&p, &roots, None, &opts(1, false)).expect_err("conflict");
        assert!(
            e.to_string()
                .contains("device:var/sota/import/gateway.url exists with different content"),
            "{e}"
        );
        assert!(matches!(e, Error::Conflicts(_)), "{e}");
        assert_eq!(snapshot(s.path()), before);
        apply(&p, &roots, None, &opts(1, true)).expect("forced");
        assert_eq!(
            fs::read(dev.join("var/sota/import/gateway.url")).expect("read"),
            b"https://x"
        );
    }

    /// A run killed (kill -9) at any step: here the hook panics, so no
    /// rollback runs, as with a kill, and the lock goes with the process's
    /// files. The next run, without force where the killed one had none,
    /// removes what the killed one left, repairs the folders it owns,
    /// stages, and the roots and the manifest verify, with no temporary
    /// left anywhere.
    #[test]
    fn a_run_killed_at_any_step_is_finished_by_the_next() {
        use crate::plan::manifest::Manifest;
        use crate::write::verify::verify;
        let mut steps = Vec::new();
        for populated in [false, true] {
            let taken = RefCell::new(Vec::new());
            let record = |at: Step| {
                taken.borrow_mut().push(at);
                Ok(())
            };
            let _ = apply_to_fresh_roots(populated, &record);
            steps.extend(taken.into_inner().into_iter().map(|s| (populated, s)));
        }
        assert!(steps.len() > 20, "{steps:?}");
        for (populated, step) in steps {
            let dir = roots_for(populated);
            let (dev, host, manifest) = (dir.join("d"), dir.join("h"), dir.join("m.json"));
            let roots = Roots {
                device: &dev,
                host: Some(&host),
            };
            let json = Manifest::from_plan(&plan()).to_json();
            let outside = Outside {
                path: &manifest,
                bytes: json.as_bytes(),
                mode: MODE_FILE,
            };
            let kill = |at: Step| -> io::Result<()> {
                if at == step {
                    panic!("killed at {at:?}");
                }
                Ok(())
            };
            let killed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                apply_with(&plan(), &roots, Some(&outside), &opts(1, populated), &kill)
            }));
            assert!(killed.is_err(), "{step:?} was not reached");
            apply(&plan(), &roots, Some(&outside), &opts(1, populated))
                .unwrap_or_else(|e| panic!("after a kill at {step:?}: {e}"));
            assert_eq!(fs::read(&manifest).expect("manifest"), json.as_bytes());
            // Only the files the populated roots hold of their own differ.
            let differences = verify(&Manifest::from_plan(&plan()), &roots).expect("verify");
            let theirs = ["usr/lib/sota/conf.d/10-other.toml", "notes.txt"];
            assert!(
                differences.iter().all(|d| matches!(d,
                    crate::write::verify::Difference::Extra { path, .. } if populated && theirs.contains(&path.as_str()))),
                "after a kill at {step:?}, populated={populated}: {differences:?}"
            );
            let left: Vec<String> = snapshot(dir.path())
                .into_keys()
                .filter(|k| k.contains(".sota-stage-"))
                .collect();
            assert_eq!(left, Vec::<String>::new(), "{step:?}");
        }
    }

    /// A folder swapped between the check and the write (the hook runs
    /// at the first write step, after everything was looked at): for a
    /// link to a folder outside the root, and for another folder. The run
    /// fails, nothing lands outside the root or in the moved folder, and
    /// what it created is removed.
    #[test]
    fn a_folder_swapped_after_the_check_is_never_written_through() {
        for with_link in [true, false] {
            let s = TestDir::new();
            let (dev, outside) = (s.join("d"), s.join("outside"));
            fs::create_dir_all(dev.join("var/sota/import")).expect("mkdir");
            fs::create_dir_all(&outside).expect("mkdir");
            for f in ["var/sota", "var/sota/import"] {
                fs::set_permissions(dev.join(f), fs::Permissions::from_mode(0o700)).expect("chmod");
            }
            let mut p = plan();
            p.files.retain(|f| f.side == Side::Device);
            let roots = Roots {
                device: &dev,
                host: None,
            };
            // `usr` is created first: the swap comes before any write.
            let swap = |at: Step| -> io::Result<()> {
                if at == Step::CreateDir(0) {
                    fs::rename(dev.join("var/sota"), s.join("moved"))?;
                    if with_link {
                        std::os::unix::fs::symlink(&outside, dev.join("var/sota"))?;
                    } else {
                        fs::create_dir(dev.join("var/sota"))?;
                    }
                }
                Ok(())
            };
            let e = apply_with(&p, &roots, None, &opts(1, false), &swap)
                .expect_err("a swapped folder fails the run");
            let why = if with_link {
                "device:var/sota exists and is not a folder"
            } else {
                "device:var/sota was replaced by another folder"
            };
            assert!(e.to_string().contains(why), "{e}");
            assert_eq!(
                snapshot(&outside).into_keys().collect::<Vec<_>>(),
                [""],
                "written through the link"
            );
            assert_eq!(
                snapshot(&s.join("moved")).into_keys().collect::<Vec<_>>(),
                ["", "import"],
                "written into the folder moved away"
            );
            assert!(!dev.join("usr").exists());
        }
    }

    #[test]
    fn links_and_folders_in_the_way_are_refused() {
        let s = TestDir::new();
        let dev = s.join("d");
        fs::create_dir_all(dev.join("var/sota")).expect("mkdir");
        std::os::unix::fs::symlink("/etc/passwd", dev.join("var/sota/z.zip")).expect("link");
        let mut p = plan();
        p.files.retain(|f| f.side == Side::Device);
        let roots = Roots {
            device: &dev,
            host: None,
        };
        let e = apply(&p, &roots, None, &opts(1, true)).expect_err("link");
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }
}
