//! Locking the roots: each root folder resolved, opened and `flock`ed,
//! waiting up to a timeout and naming the process that holds it.

use std::fs::{self, File};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{self as rfs, AtFlags, Mode};
use rustix::io::Errno;

use super::opened::{identity, Opened, DIR_FLAGS};
use super::types::{Roots, MAX_LOCK_TIMEOUT};
use super::writer::create_root;
use crate::error::{Error, Result};
use crate::escape::escape;
use crate::intake::catalogue::Side;

/// Makes a locked root the folder `""` of its sides in `opened`.
pub(super) fn add_root(opened: &mut Opened, root: &LockedRoot) -> Result<()> {
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

/// A root, resolved, opened and locked: which sides it is the root of.
#[derive(Debug)]
pub(super) struct LockedRoot {
    pub(super) file: File,
    pub(super) shown: PathBuf,
    pub(super) sides: Vec<Side>,
}

/// A root before it is locked: its resolved path, identity, the path as
/// given, and the sides it is the root of.
pub(super) type RootFolder<'a> = (PathBuf, (u64, u64), &'a Path, Vec<Side>);

/// Takes an exclusive advisory lock (`flock(2)`) on each root folder
/// itself: no lock file, nothing left in a tree. A root given as a link
/// is resolved first (the folder it names is the one written and locked).
/// Waits up to `timeout` (at most [`MAX_LOCK_TIMEOUT`]) for another run
/// that holds one. Two roots that are the same folder, under two paths
/// (a bind mount), are refused when the plan writes to both. The lock goes
/// with the returned files (closed at the end of the run, or by the kernel
/// when it is killed). `waiting` is told once, as the run starts to wait.
pub(super) fn lock_roots(
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
pub(super) fn waiting_text(path: &Path, holder: Option<u32>, timeout: Duration) -> String {
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
pub(super) fn lock_dir(
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
pub(super) fn lock_holder(ino: u64) -> Option<u32> {
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
