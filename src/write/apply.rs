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
//! roots and the manifest are as they were. Symbolic links are never
//! followed.

use std::collections::BTreeSet;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::aktualizr::paths::OWNED_DIRS;
use crate::error::{Error, Result};
use crate::intake::catalogue::Side;
use crate::plan::files::{is_within, leftover, Plan, MODE_DIR, OLD, TEMP};

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
    /// How long to wait for another run that holds the roots.
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
        write_temp(&temp, bytes, mode, epoch, true)?;
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
    sync_dir(parent);
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

/// [`apply`], calling `hook` before each step; a hook error fails the step.
pub fn apply_with(
    plan: &Plan,
    roots: &Roots<'_>,
    outside: Option<&Outside<'_>>,
    opts: &Options,
    hook: &dyn Fn(Step) -> io::Result<()>,
) -> Result<Applied> {
    let target = |root: Side, rel: &str| -> Result<PathBuf> {
        roots.get(root).map(|r| r.join(rel)).ok_or_else(|| {
            Error::Usage(format!(
                "the plan has {} files but no {0} root was given",
                root.as_str()
            ))
        })
    };
    for file in &plan.files {
        target(file.side, &file.path)?;
    }

    // 0. Create the missing roots, then hold them: a second run on the
    // same roots waits here until this one is done.
    let mut undo = Undo::default();
    let locked = (|| -> Result<Vec<File>> {
        for root in [Some(roots.device), roots.host].into_iter().flatten() {
            undo.created_dirs.extend(create_root(root)?);
        }
        lock_roots(roots, opts.lock_timeout, opts.waiting)
    })();
    let _locks = match locked {
        Ok(locks) => locks,
        Err(e) => {
            undo.roll_back();
            return Err(e);
        }
    };
    let result = (|| -> Result<Applied> {
        let recovered = recover(plan, roots, outside)?;
        let mut applied = transaction(plan, roots, outside, opts, hook, &target, &mut undo)?;
        applied.recovered = recovered;
        Ok(applied)
    })();
    match result {
        Ok(applied) => {
            undo.finish(opts);
            Ok(applied)
        }
        Err(e) => {
            undo.roll_back();
            Err(e)
        }
    }
}

/// Looks at everything, then changes it; `undo` records each change.
fn transaction(
    plan: &Plan,
    roots: &Roots<'_>,
    outside: Option<&Outside<'_>>,
    opts: &Options,
    hook: &dyn Fn(Step) -> io::Result<()>,
    target: &dyn Fn(Side, &str) -> Result<PathBuf>,
    undo: &mut Undo,
) -> Result<Applied> {
    // 1. Look at everything; change nothing.
    let mut conflicts = Vec::new();
    let mut dir_actions = Vec::new();
    for dir in &plan.dirs {
        let path = target(dir.side, &dir.path)?;
        let action = match fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => {
                let mode = m.permissions().mode() & 0o7777;
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
            Ok(_) => {
                return Err(Error::Invalid(format!(
                    "{} exists and is not a folder; remove it",
                    label(dir.side, &dir.path)
                )))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Action::Create,
            Err(e) => return Err(Error::io("look at", &path, e)),
        };
        dir_actions.push((path, action, dir.mode()));
    }
    let mut file_actions = Vec::new();
    for file in &plan.files {
        let path = target(file.side, &file.path)?;
        let action = match fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_file() => {
                let mode = m.permissions().mode() & 0o7777;
                let same_mode = mode == file.mode();
                let same_bytes = m.len() == file.contents.expose().len() as u64
                    && fs::read(&path).map_err(|e| Error::io("read", &path, e))?
                        == *file.contents.expose();
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
            Ok(_) => {
                return Err(Error::Invalid(format!(
                    "{} exists and is not a regular file (a folder or a link); remove it",
                    label(file.side, &file.path)
                )))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Action::Create,
            Err(e) => return Err(Error::io("look at", &path, e)),
        };
        file_actions.push((path, action, file.contents.expose().as_slice(), file.mode()));
    }
    // Files of the tool that this plan does not stage (another method's,
    // a hardware ID no longer given): only with force, and never a folder.
    let mut retired = Vec::new();
    for (side, rel) in &plan.retired {
        let Some(root) = roots.get(*side) else {
            continue;
        };
        let path = root.join(rel);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => {}
            Ok(_) if opts.force => retired.push(path),
            Ok(_) => conflicts.push(format!(
                "{} is not staged by this run (left by a run of another method or with other options); it would be removed",
                label(*side, rel)
            )),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("look at", &path, e)),
        }
    }
    if !conflicts.is_empty() {
        return Err(Error::Conflicts(conflicts));
    }
    // The manifest replaces whatever manifest is there: it is the tool's.
    if let Some(out) = outside {
        let action = match fs::symlink_metadata(out.path) {
            Ok(m) if m.file_type().is_file() => Action::Replace,
            Ok(_) => {
                return Err(Error::io(
                    "write the manifest to",
                    out.path,
                    io::Error::other("it is not a regular file; remove it"),
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Action::Create,
            Err(e) => return Err(Error::io("look at", out.path, e)),
        };
        file_actions.push((out.path.to_path_buf(), action, out.bytes, out.mode));
    }

    // 2. Create folders, set their modes, write temporaries.
    for (i, (path, action, mode)) in dir_actions.iter().enumerate() {
        match action {
            Action::Create => {
                hook(Step::CreateDir(i)).map_err(|e| Error::io("create folder", path, e))?;
                // Created with its mode (the umask can only narrow it), so
                // a run killed before the chmod leaves no wider folder.
                DirBuilder::new()
                    .mode(*mode)
                    .create(path)
                    .map_err(|e| Error::io("create folder", path, e))?;
                undo.created_dirs.push(path.clone());
                hook(Step::SetDirMode(i)).map_err(|e| Error::io("set the mode of", path, e))?;
                set_mode(path, *mode)?;
            }
            Action::Replace => {
                let old = fs::symlink_metadata(path)
                    .map_err(|e| Error::io("look at", path, e))?
                    .permissions()
                    .mode()
                    & 0o7777;
                set_mode(path, *mode)?;
                undo.moded_dirs.push((path.clone(), old));
            }
            Action::Keep => {}
        }
    }
    let mut pending = Vec::new();
    for (i, (path, action, bytes, mode)) in file_actions.iter().enumerate() {
        if *action == Action::Keep {
            continue;
        }
        let temp = temp_name(path, TEMP);
        hook(Step::WriteTemp(i)).map_err(|e| Error::io("write", &temp, e))?;
        undo.temps.push(temp.clone());
        write_temp(&temp, bytes, *mode, opts.epoch, opts.sync)?;
        pending.push((i, temp, path, *action));
    }
    // 3. Rename into place; move retired files aside.
    for (i, temp, path, action) in &pending {
        hook(Step::Rename(*i)).map_err(|e| Error::io("rename into place", path, e))?;
        if *action == Action::Replace {
            let old = temp_name(path, OLD);
            fs::rename(path, &old).map_err(|e| Error::io("move aside", path, e))?;
            undo.moved_aside.push((old, (*path).clone()));
        }
        fs::rename(temp, path).map_err(|e| Error::io("rename into place", path, e))?;
        undo.temps.retain(|t| t != temp);
        undo.placed.push((*path).clone());
    }
    for (i, path) in retired.iter().enumerate() {
        hook(Step::Remove(i)).map_err(|e| Error::io("remove", path, e))?;
        let old = temp_name(path, OLD);
        fs::rename(path, &old).map_err(|e| Error::io("remove", path, e))?;
        undo.moved_aside.push((old, path.clone()));
        undo.removed.push(path.clone());
    }
    let outside_written = outside.is_some() as usize;
    Ok(Applied {
        written: pending.len().saturating_sub(outside_written),
        unchanged: file_actions.len() - pending.len(),
        removed: retired.len(),
        recovered: 0,
    })
}

/// What to take back when a run fails half-way.
#[derive(Debug, Default)]
struct Undo {
    created_dirs: Vec<PathBuf>,
    /// (folder, its mode before).
    moded_dirs: Vec<(PathBuf, u32)>,
    temps: Vec<PathBuf>,
    placed: Vec<PathBuf>,
    /// (backup, original path) of replaced and removed files.
    moved_aside: Vec<(PathBuf, PathBuf)>,
    removed: Vec<PathBuf>,
}

impl Undo {
    /// Best effort: every step is tried even if one fails.
    fn roll_back(&self) {
        for path in self.placed.iter().rev() {
            let _ = fs::remove_file(path);
        }
        for (old, original) in self.moved_aside.iter().rev() {
            let _ = fs::rename(old, original);
        }
        for temp in &self.temps {
            let _ = fs::remove_file(temp);
        }
        for (dir, mode) in self.moded_dirs.iter().rev() {
            let _ = fs::set_permissions(dir, fs::Permissions::from_mode(*mode));
        }
        for dir in self.created_dirs.iter().rev() {
            let _ = fs::remove_dir(dir);
        }
    }

    /// After success: the backups go, folder times are set, and with
    /// `sync` each changed folder is synced once.
    fn finish(&self, opts: &Options) {
        for (old, _) in &self.moved_aside {
            let _ = fs::remove_file(old);
        }
        // Folders created here get the same time as the files; their mtime
        // changed with every rename, so set it last.
        for dir in self.created_dirs.iter().rev() {
            set_mtime_path(dir, opts.epoch);
        }
        if opts.sync {
            let changed: BTreeSet<&Path> = self
                .placed
                .iter()
                .chain(self.removed.iter())
                .chain(self.created_dirs.iter())
                .filter_map(|p| p.parent())
                .collect();
            for dir in changed {
                sync_dir(dir);
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
fn recover(plan: &Plan, roots: &Roots<'_>, outside: Option<&Outside<'_>>) -> Result<usize> {
    let mut folders: BTreeSet<(PathBuf, Option<String>)> = BTreeSet::new();
    let mut add = |side: Side, rel: &str| {
        let Some(root) = roots.get(side) else {
            return;
        };
        let parent = rel.rsplit_once('/').map_or("", |(p, _)| p);
        if side == Side::Device && !OWNED_DIRS.iter().any(|o| is_within(parent, o)) {
            return;
        }
        // Only through real folders: a link or a file on the way is
        // refused by the check that follows, and never followed here.
        let mut at = root.to_path_buf();
        for part in parent.split('/').filter(|p| !p.is_empty()) {
            at.push(part);
            if !fs::symlink_metadata(&at).is_ok_and(|m| m.is_dir()) {
                return;
            }
        }
        folders.insert((at, None));
    };
    for f in &plan.files {
        add(f.side, &f.path);
    }
    for (side, rel) in &plan.retired {
        add(*side, rel);
    }
    if let Some(out) = outside {
        let name = out
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        let parent = out.path.parent().filter(|p| !p.as_os_str().is_empty());
        folders.insert((parent.unwrap_or(Path::new(".")).to_path_buf(), name));
    }
    let mut found = 0;
    for (folder, only) in &folders {
        if !fs::metadata(folder).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        let entries = fs::read_dir(folder).map_err(|e| Error::io("list", folder, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("list", folder, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some((original, kind)) = leftover(&name) else {
                continue;
            };
            if only.as_deref().is_some_and(|o| o != original) {
                continue;
            }
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).map_err(|e| Error::io("look at", &path, e))?;
            if meta.is_dir() {
                continue;
            }
            let original = folder.join(original);
            let gone = matches!(fs::symlink_metadata(&original), Err(e) if e.kind() == io::ErrorKind::NotFound);
            if kind == OLD && gone {
                fs::rename(&path, &original).map_err(|e| Error::io("put back", &original, e))?;
            } else {
                fs::remove_file(&path).map_err(|e| Error::io("remove the leftover", &path, e))?;
            }
            found += 1;
        }
    }
    Ok(found)
}

/// Takes an exclusive advisory lock (`flock(2)`) on each root folder
/// itself: no lock file, nothing left in a tree. Waits up to `timeout` for
/// another run that holds one. The lock goes with the returned files
/// (closed at the end of the run, or by the kernel when it is killed).
fn lock_roots(
    roots: &Roots<'_>,
    timeout: Duration,
    waiting: Option<fn(&str)>,
) -> Result<Vec<File>> {
    let mut paths: Vec<&Path> = [Some(roots.device), roots.host]
        .into_iter()
        .flatten()
        .collect();
    // Always in the same order, so two runs cannot hold one each.
    paths.sort();
    paths.dedup();
    let deadline = Instant::now() + timeout;
    let mut locks = Vec::new();
    // Said once per run, whichever root it waits for first.
    let mut waiting = waiting;
    for path in paths {
        locks.push(lock_dir(path, deadline, timeout, &mut waiting)?);
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
        crate::escape::escape(&path.display().to_string())
    )
}

/// Locks one root folder; `waiting` is taken (and called) the first time
/// the run has to wait.
fn lock_dir(
    path: &Path,
    deadline: Instant,
    timeout: Duration,
    waiting: &mut Option<fn(&str)>,
) -> Result<File> {
    use rustix::fs::{flock, FlockOperation};
    loop {
        let dir = File::open(path).map_err(|e| Error::io("lock", path, e))?;
        match flock(&dir, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {
                // The run that held it may have removed the folder (it had
                // created it and failed): lock the one that is there now.
                let held = dir.metadata().map_err(|e| Error::io("lock", path, e))?;
                match fs::symlink_metadata(path) {
                    Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => {
                        return Ok(dir)
                    }
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        create_root(path)?;
                        continue;
                    }
                    Err(e) => return Err(Error::io("lock", path, e)),
                }
            }
            Err(e) if e == rustix::io::Errno::WOULDBLOCK || e == rustix::io::Errno::INTR => {
                let ino = || dir.metadata().map(|m| m.ino()).unwrap_or(0);
                if Instant::now() >= deadline {
                    return Err(Error::Locked {
                        path: path.to_path_buf(),
                        holder: lock_holder(ino()),
                        waited: timeout,
                    });
                }
                if let Some(say) = waiting.take() {
                    say(&waiting_text(path, lock_holder(ino()), timeout));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(Error::io("lock", path, e.into())),
        }
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
                set_mode(&dir, MODE_DIR)
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

fn temp_name(path: &Path, kind: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.sota-stage-{}.{kind}", pid()))
}

/// This process's id, asked of the kernel once.
fn pid() -> u32 {
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *PID.get_or_init(std::process::id)
}

fn write_temp(temp: &Path, bytes: &[u8], mode: u32, epoch: i64, sync: bool) -> Result<()> {
    // Created 0600 whatever the umask, then set to its mode: a secret is
    // never readable by others, not even for a moment.
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(temp)
        .map_err(|e| Error::io("create", temp, e))?;
    let written = (|| {
        file.write_all(bytes)?;
        if mode != 0o600 {
            file.set_permissions(fs::Permissions::from_mode(mode))?;
        }
        file.set_modified(system_time(epoch))?;
        if sync {
            file.sync_all()?;
        }
        Ok(())
    })();
    written.map_err(|e: io::Error| {
        let _ = fs::remove_file(temp);
        Error::io("write", temp, e)
    })
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io("set the mode of", path, e))
}

fn system_time(epoch: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(epoch).unwrap_or(0))
}

/// Sets a folder's mtime (not its atime), by path: one system call, where
/// opening it to set the time takes three. A folder's time is not part of
/// what is checked or verified, so a failure here is not worth failing the
/// run.
fn set_mtime_path(path: &Path, epoch: i64) {
    use rustix::fs::{utimensat, AtFlags, Timespec, Timestamps, CWD, UTIME_OMIT};
    let times = Timestamps {
        last_access: Timespec {
            tv_sec: 0,
            tv_nsec: UTIME_OMIT,
        },
        last_modification: Timespec {
            tv_sec: epoch.max(0),
            tv_nsec: 0,
        },
    };
    let _ = utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW);
}

/// fsync a folder so renames in it survive a crash; best effort.
fn sync_dir(path: &Path) {
    if let Ok(dir) = File::open(path) {
        let _ = dir.sync_all();
    }
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
