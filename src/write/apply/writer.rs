//! Writing one file through a folder handle: temporary names, the fill
//! (bytes, mode, mtime, fsync), the comparison of bytes, folder times, the
//! roots created by path, and `write_file` (one file outside any root).

use std::fs::{self, DirBuilder, File};
use std::io::{self, Read, Write};
use std::os::fd::BorrowedFd;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rustix::fs::{self as rfs, AtFlags, Mode, OFlags};

use super::types::Options;
use crate::error::{Error, Result};
use crate::plan::files::{MODE_DIR, TEMP};

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

/// True when the file `name` in `dir` holds exactly `bytes`.
pub(super) fn same_bytes(
    dir: BorrowedFd<'_>,
    name: &str,
    bytes: &[u8],
    shown: &Path,
) -> Result<bool> {
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

/// Creates a missing root and its missing parents, each with the folder
/// mode (never the umask's); returns what it created, parents first.
pub(super) fn create_root(root: &Path) -> Result<Vec<PathBuf>> {
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
pub(super) fn temp_file_name(name: &str, kind: &str) -> String {
    format!(".{name}.sota-stage-{}.{kind}", pid())
}

pub(super) fn temp_name(path: &Path, kind: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(temp_file_name(&name, kind))
}

/// This process's id, asked of the kernel once.
pub(super) fn pid() -> u32 {
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *PID.get_or_init(std::process::id)
}

/// Fills a new file: its bytes, its mode, `epoch` as its mtime, and an
/// fsync when asked. Removes it on failure.
pub(super) fn fill(
    file: &mut File,
    bytes: &[u8],
    mode: u32,
    epoch: i64,
    sync: bool,
) -> io::Result<()> {
    file.write_all(bytes)?;
    fill_file(file, mode, epoch, sync)
}

/// A written file's mode, time and fsync.
pub(super) fn fill_file(file: &mut File, mode: u32, epoch: i64, sync: bool) -> io::Result<()> {
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
pub(super) fn write_temp(
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
pub(super) fn write_temp_path(temp: &Path, bytes: &[u8], mode: u32, epoch: i64) -> Result<()> {
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

pub(super) fn system_time(epoch: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(epoch).unwrap_or(0))
}

pub(super) fn mtime(epoch: i64) -> rfs::Timestamps {
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
pub(super) fn set_mtime(dir: BorrowedFd<'_>, epoch: i64) {
    let _ = rfs::futimens(dir, &mtime(epoch));
}

/// [`set_mtime`] by path, for the roots the run created.
pub(super) fn set_mtime_path(path: &Path, epoch: i64) {
    let _ = rfs::utimensat(rfs::CWD, path, &mtime(epoch), AtFlags::SYMLINK_NOFOLLOW);
}
