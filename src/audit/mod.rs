//! The image audit (docs/audit.md): proves that no host secret of a
//! credentials archive reached a root file system, a folder or a tar of
//! one.
//!
//! - [`patterns`]: what must never be there, from the archive (pure).
//! - [`scan`]: one file's bytes: digest, multi-pattern search, containers.
//! - here: the walk. A folder is walked with `walkdir` (links never
//!   followed) by one thread that feeds worker threads over a bounded
//!   channel; a tar (plain, gzip, xz) is streamed member by member. Modes
//!   of the staged secret files and folders are checked on the way.
//!
//! This is an input edge like [`crate::intake`]: everything it reads is
//! bounded by [`Limits`] (files, depth, bytes held, bytes decompressed).

pub mod findings;
mod inflate;
pub mod patterns;
pub mod scan;

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Mutex;

use rustix::fs::{self, Mode, OFlags};
use walkdir::{DirEntryExt, WalkDir};

use crate::error::{Error, Result};
use crate::escape::escape;
use crate::report::Severity;
pub use findings::{Finding, Limits};
pub use patterns::{Kind, Needles};
use scan::{container, read_full, Place, Scanner};

/// What an audit of one root found, and how much it looked at.
#[derive(Debug, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub files: u64,
}

/// Audits one root: a folder, or a `.tar`, `.tar.gz`, `.tar.xz` of one.
/// `Err` only when the root itself cannot be opened; everything below is a
/// finding.
pub fn audit(root: &Path, needles: &Needles, limits: &Limits) -> Result<Report> {
    let meta = std::fs::metadata(root).map_err(|e| Error::io("read", root, e))?;
    let mut report = if meta.is_dir() {
        walk_folder(root, needles, limits)?
    } else if meta.is_file() {
        let file = File::open(root).map_err(|e| Error::io("open", root, e))?;
        walk_tar(root, file, needles, limits)?
    } else {
        return Err(Error::Usage(format!(
            "`{}` is neither a folder nor a tar file; give IMAGE_ROOTFS or a .tar, .tar.gz or .tar.xz of it",
            escape(&root.display().to_string())
        )));
    };
    report.findings.sort_by(|a, b| {
        (&a.path, &a.member, a.kind, &a.message).cmp(&(&b.path, &b.member, b.kind, &b.message))
    });
    report.findings.dedup();
    Ok(report)
}

/// The staged secrets and their folders (design.md section 4): others may
/// not read them. `None` when the path is not one of them or is fine.
pub fn mode_finding(path: &str, is_dir: bool, mode: u32) -> Option<Finding> {
    let (wanted, what) = mode_rule(path, is_dir)?;
    let mode = mode & 0o7777;
    if mode & 0o077 == 0 {
        return None;
    }
    Some(Finding {
        root: None,
        path: path.to_owned(),
        member: None,
        kind: Kind::Mode,
        severity: Severity::Error,
        message: format!(
            "is {what} with mode {mode:04o}: others can read it; it must be {wanted:04o} (sota-stage stage sets it)"
        ),
    })
}

/// The mode a staged secret file or folder must have, and what it is;
/// `None` for every other path (the walk reads no mode for those).
fn mode_rule(path: &str, is_dir: bool) -> Option<(u32, &'static str)> {
    match (path, is_dir) {
        ("var/sota" | "var/sota/import", true) => Some((0o700, "aktualizr's storage folder")),
        (patterns::DEVICE_ZIP, false) => Some((0o600, "the device's provisioning archive")),
        ("var/sota/import/pkey.pem", false) => Some((0o600, "the device's private key")),
        _ => None,
    }
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// Work for a worker: regular files of one folder, opened relative to it
/// (one path lookup for the batch, not one per file).
struct Batch {
    /// The folder, and its inode number as its parent listed it.
    dir: PathBuf,
    dir_ino: u64,
    files: Vec<Job>,
}

/// A regular file: its name in the folder, its place, and its inode number
/// as the folder listed it.
struct Job {
    name: OsString,
    rel: String,
    ino: u64,
}

fn walk_folder(root: &Path, needles: &Needles, limits: &Limits) -> Result<Report> {
    let threads = limits.threads.max(1);
    // Files go out in batches of one folder: one channel operation and one
    // path lookup per BATCH files, not per file (a root file system is
    // mostly small files).
    let (tx, rx) = mpsc::sync_channel::<Batch>(threads * 4);
    let rx = Mutex::new(rx);
    let mut walker_findings = Vec::new();
    let mut files = 0u64;
    let worker_findings: Vec<Finding> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| s.spawn(|| worker(&rx, needles, limits)))
            .collect();
        let mut batch: Option<Batch> = None;
        // The inode numbers of the folders from the root down to the one
        // being listed.
        let mut dir_inos: Vec<u64> = Vec::new();
        let walk = WalkDir::new(root)
            .follow_links(false)
            .max_depth(limits.depth)
            .same_file_system(false);
        for entry in walk {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    let rel = e.path().map(|p| relative(root, p)).unwrap_or_default();
                    walker_findings.push(Finding {
                        root: None,
                        path: rel,
                        member: None,
                        kind: Kind::Unreadable,
                        severity: Severity::Error,
                        message: format!(
                            "cannot be read ({}); the audit is incomplete",
                            e.io_error()
                                .map_or_else(|| e.to_string(), ToString::to_string)
                        ),
                    });
                    continue;
                }
            };
            let rel = relative(root, entry.path());
            // The type as the folder lists it: no stat per file (the
            // worker's fstat gives the size and checks the type again).
            let ft = entry.file_type();
            if ft.is_symlink() || !(ft.is_file() || ft.is_dir()) {
                continue;
            }
            if mode_rule(&rel, ft.is_dir()).is_some() {
                if let Some(f) = entry
                    .metadata()
                    .ok()
                    .and_then(|meta| mode_finding(&rel, ft.is_dir(), meta.mode()))
                {
                    walker_findings.push(f);
                }
            }
            if ft.is_dir() {
                dir_inos.truncate(entry.depth());
                dir_inos.push(entry.ino());
                if entry.depth() == limits.depth && entry.depth() > 0 {
                    walker_findings.push(Finding {
                        root: None,
                        path: rel,
                        member: None,
                        kind: Kind::NotSearched,
                        severity: Severity::Error,
                        message: format!(
                            "is {} folders deep: what it holds was not searched",
                            limits.depth
                        ),
                    });
                }
                continue;
            }
            files += 1;
            if files > limits.files {
                walker_findings.push(Finding {
                    root: None,
                    path: String::new(),
                    member: None,
                    kind: Kind::NotSearched,
                    severity: Severity::Error,
                    message: format!(
                        "holds more than {} files: the rest were not searched",
                        limits.files
                    ),
                });
                break;
            }
            let (Some(dir), Some(&dir_ino)) = (
                entry.path().parent(),
                entry.depth().checked_sub(1).and_then(|d| dir_inos.get(d)),
            ) else {
                // The root is a folder: every file has one above it.
                continue;
            };
            let job = Job {
                name: entry.file_name().to_owned(),
                rel,
                ino: entry.ino(),
            };
            match &mut batch {
                Some(b) if b.files.len() < BATCH && b.dir == dir => b.files.push(job),
                _ => {
                    let full = batch.replace(Batch {
                        dir: dir.to_owned(),
                        dir_ino,
                        files: vec![job],
                    });
                    if full.is_some_and(|b| tx.send(b).is_err()) {
                        break;
                    }
                }
            }
        }
        if let Some(b) = batch {
            let _ = tx.send(b);
        }
        drop(tx);
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    walker_findings.extend(worker_findings);
    Ok(Report {
        findings: walker_findings,
        files: files.min(limits.files),
    })
}

const BATCH: usize = 32;

fn worker(rx: &Mutex<mpsc::Receiver<Batch>>, needles: &Needles, limits: &Limits) -> Vec<Finding> {
    let mut scanner = Scanner::new(needles, limits);
    loop {
        // The lock is held only while taking one batch.
        let batch = match rx.lock() {
            Ok(guard) => guard.recv(),
            Err(_) => break,
        };
        let Ok(batch) = batch else { break };
        scan_batch(&mut scanner, batch);
    }
    scanner.findings
}

fn scan_batch(scanner: &mut Scanner<'_>, batch: Batch) {
    let dir = open_dir(&batch.dir, batch.dir_ino);
    for job in batch.files {
        let place = Place::file(job.rel);
        let file = match &dir {
            Ok(dir) => open_in(dir, &job.name, job.ino),
            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
        };
        match file {
            Ok((mut file, size)) => scanner.file(&place, &mut file, size),
            Err(e) => scanner.finding(
                &place,
                Kind::Unreadable,
                Severity::Error,
                format!("cannot be read ({e}); the audit of this file is incomplete"),
            ),
        }
    }
}

/// Opens the folder the walk listed; an error if it is another one now (a
/// link put in its place, say).
fn open_dir(path: &Path, ino: u64) -> io::Result<OwnedFd> {
    let dir = fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    if fs::fstat(&dir)?.st_ino != ino {
        return Err(changed());
    }
    Ok(dir)
}

/// Opens the file the walk saw in `dir`, and its size: if it was replaced
/// since (by a link, say: never followed), it is not read.
fn open_in(dir: &OwnedFd, name: &OsStr, ino: u64) -> io::Result<(File, u64)> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::CLOEXEC;
    let file = match fs::openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => File::from(fd),
        Err(rustix::io::Errno::LOOP) => return Err(changed()),
        Err(e) => return Err(e.into()),
    };
    let meta = file.metadata()?;
    if meta.ino() != ino || !meta.is_file() {
        return Err(changed());
    }
    Ok((file, meta.len()))
}

fn changed() -> io::Error {
    io::Error::other("it changed while the audit ran")
}

fn walk_tar(root: &Path, file: File, needles: &Needles, limits: &Limits) -> Result<Report> {
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let mut head = [0u8; 6];
    let got = read_full(&mut reader, &mut head).map_err(|e| Error::io("read", root, e))?;
    let head = &head[..got];
    let chained = io::Cursor::new(head.to_vec()).chain(reader);
    let mut scanner = Scanner::new(needles, limits);
    let mut modes = |path: &str, is_dir: bool, mode: u32| mode_finding(path, is_dir, mode);
    let result = if head.starts_with(b"\xfd7zXZ\x00") {
        xz_tar(chained, &mut scanner, &mut modes)
    } else if container(head) == Some("gzip stream") {
        let mut gz = flate2::read::MultiGzDecoder::new(chained);
        scanner.tar_root(&mut gz, &mut modes)
    } else {
        let mut plain = chained;
        scanner.tar_root(&mut plain, &mut modes)
    };
    let files = match result {
        Ok(n) => n,
        Err(e) => {
            scanner.findings.push(Finding {
                root: None,
                path: String::new(),
                member: None,
                kind: Kind::Unreadable,
                severity: Severity::Error,
                message: format!(
                    "the tar archive cannot be read to its end ({e}); the audit is incomplete"
                ),
            });
            0
        }
    };
    Ok(Report {
        findings: scanner.findings,
        files,
    })
}

/// xz through `lzma-rs`, which writes what it decodes: a thread decodes
/// into a bounded channel, the tar reader reads from it.
fn xz_tar(
    input: impl Read + Send,
    scanner: &mut Scanner<'_>,
    modes: &mut dyn FnMut(&str, bool, u32) -> Option<Finding>,
) -> io::Result<u64> {
    let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(4);
    std::thread::scope(|s| {
        let decoder = s.spawn(move || {
            let mut input = BufReader::new(input);
            let mut out = io::BufWriter::with_capacity(256 * 1024, ChannelWriter { tx });
            lzma_rs::xz_decompress(&mut input, &mut out)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("xz: {e}")))?;
            io::Write::flush(&mut out)
        });
        let mut reader = ChannelReader {
            rx,
            chunk: Vec::new(),
            at: 0,
        };
        let result = scanner.tar_root(&mut reader, modes);
        // Unblocks the decoder if the tar ended first.
        drop(reader);
        let decoded = decoder
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("xz decoder failed")));
        match (result, decoded) {
            (Ok(n), Ok(())) => Ok(n),
            (Err(e), _) => Err(e),
            // The tar ended before the xz stream: the tail was not read.
            (Ok(n), Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(n),
            (Ok(_), Err(e)) => Err(e),
        }
    })
}

struct ChannelWriter {
    tx: mpsc::SyncSender<Vec<u8>>,
}

impl io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tx
            .send(buf.to_vec())
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "reader gone"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct ChannelReader {
    rx: mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    at: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at >= self.chunk.len() {
            match self.rx.recv() {
                Ok(c) => {
                    self.chunk = c;
                    self.at = 0;
                }
                // The decoder is done (or failed: its error is reported).
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
