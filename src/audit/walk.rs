//! A folder walked by the worker threads themselves (as ripgrep walks):
//! a worker lists a folder (each entry's type from the listing: no stat per
//! file), scans its regular files through the folder's descriptor
//! (`openat`, `O_NOFOLLOW`: no path lookup per file), and puts its
//! subfolders on a shared stack, and the rest of its files too, in batches,
//! once another worker is idle. Links are never followed; a file or folder is read only
//! if it is still the one the listing named (same inode).

use std::collections::HashMap;
use std::ffi::{CString, OsStr};
use std::fs::{File, Metadata};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use rustix::fs::{self as rfs, AtFlags, Dir, FileType, Mode, OFlags};

use super::findings::{mode_finding, mode_rule, Finding, Limits};
use super::git;
use super::patterns::{Kind, Needles};
use super::scan::{Place, Scanner, Shared, REDACTED};
use crate::report::Severity;

/// Files handed to an idle worker at once.
const BATCH: usize = 16;

/// A folder to list.
struct Folder {
    path: PathBuf,
    /// Its place in reports: relative to the root, `/`-separated, lossy.
    rel: String,
    /// Its inode number as its parent listed it (the root's from a stat).
    ino: u64,
    depth: usize,
}

/// Files of one listed folder, for another worker.
struct Batch {
    dir: PathBuf,
    dir_ino: u64,
    files: Vec<Job>,
}

/// A regular file: its name in its folder, its place, and its inode number
/// as the folder listed it.
struct Job {
    name: CString,
    rel: String,
    ino: u64,
}

enum Work {
    Folder(Folder),
    Batch(Batch),
}

#[derive(Default)]
struct Queue {
    work: Vec<Work>,
    /// Workers running a piece of work.
    busy: usize,
    /// Workers waiting for one.
    idle: usize,
}

struct Walk<'a> {
    limits: &'a Limits,
    queue: Mutex<Queue>,
    wake: Condvar,
    files: AtomicU64,
    /// Over the file limit: list nothing more.
    full: AtomicBool,
    links: Links,
}

/// Audits the folder `root`: the findings and the number of regular files.
pub fn walk_folder(
    root: &Path,
    needles: &Needles,
    limits: &Limits,
    shared: &Shared,
) -> io::Result<(Vec<Finding>, u64)> {
    let ino = std::fs::metadata(root)?.ino();
    let walk = Walk {
        limits,
        queue: Mutex::new(Queue {
            work: vec![Work::Folder(Folder {
                path: root.to_owned(),
                rel: String::new(),
                ino,
                depth: 0,
            })],
            ..Queue::default()
        }),
        wake: Condvar::new(),
        files: AtomicU64::new(0),
        full: AtomicBool::new(false),
        links: Links::default(),
    };
    let threads = limits.threads.max(1);
    let mut findings: Vec<Finding> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| s.spawn(|| walk.worker(needles, shared)))
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    let files = walk.files.load(Ordering::Relaxed).min(limits.files);
    findings.extend(linked_findings(walk.links));
    Ok((findings, files))
}

impl Walk<'_> {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn worker(&self, needles: &Needles, shared: &Shared) -> Vec<Finding> {
        let mut scanner = Scanner::new(needles, self.limits, shared);
        while let Some(work) = self.next() {
            match work {
                Work::Folder(folder) => self.list(&mut scanner, &folder),
                Work::Batch(batch) => scan_batch(&mut scanner, batch, &self.links),
            }
            let mut queue = self.lock();
            queue.busy -= 1;
            if queue.busy == 0 && queue.work.is_empty() {
                self.wake.notify_all();
            }
        }
        scanner.findings
    }

    /// The next piece of work; `None` when there is none and no worker
    /// could make more.
    fn next(&self) -> Option<Work> {
        let mut queue = self.lock();
        loop {
            if let Some(work) = queue.work.pop() {
                queue.busy += 1;
                return Some(work);
            }
            if queue.busy == 0 {
                return None;
            }
            queue.idle += 1;
            queue = self
                .wake
                .wait(queue)
                .unwrap_or_else(PoisonError::into_inner);
            queue.idle -= 1;
        }
    }

    fn push(&self, work: Work) {
        self.lock().work.push(work);
        self.wake.notify_one();
    }

    /// Whether a worker is waiting for work.
    fn someone_idle(&self) -> bool {
        self.lock().idle > 0
    }

    /// Puts `files` of `folder` on the stack in batches, for every worker.
    fn share(&self, folder: &Folder, files: impl Iterator<Item = Job>) {
        let mut files = files.peekable();
        let mut queue = self.lock();
        while files.peek().is_some() {
            queue.work.push(Work::Batch(Batch {
                dir: folder.path.clone(),
                dir_ino: folder.ino,
                files: files.by_ref().take(BATCH).collect(),
            }));
        }
        drop(queue);
        self.wake.notify_all();
    }

    /// Lists a folder: its subfolders go on the stack, its files are
    /// scanned here (or shared).
    fn list(&self, scanner: &mut Scanner<'_>, folder: &Folder) {
        let opened = open_dir(&folder.path, folder.ino).and_then(|fd| Ok(Dir::new(fd)?));
        let mut dir = match opened {
            Ok(dir) => dir,
            Err(e) => {
                folder_unreadable(scanner, folder, &e);
                return;
            }
        };
        if let Ok(fd) = dir.fd() {
            search_xattrs(scanner, fd, &folder.rel);
        }
        // A git folder: its object database is read as git reads it (packs
        // with their deltas applied, every object once), so its `objects`
        // folder is not walked as files.
        let git_dir = git::is_bare(&folder.path);
        if git_dir {
            git_objects(scanner, &folder.path, &folder.rel);
        }
        // In parts, so that a huge folder is not held in memory.
        while !self.full.load(Ordering::Relaxed) {
            let entries = match read_some(&mut dir) {
                Ok(entries) if entries.is_empty() => return,
                Ok(entries) => entries,
                Err(e) => {
                    folder_unreadable(scanner, folder, &e);
                    return;
                }
            };
            match dir.fd() {
                Ok(fd) => {
                    let entries = if git_dir {
                        entries
                            .into_iter()
                            .filter(|(name, _, _)| name.as_bytes() != b"objects")
                            .collect()
                    } else {
                        entries
                    };
                    self.entries(scanner, folder, fd, entries)
                }
                Err(_) => return,
            }
        }
    }

    /// Entries of a folder: subfolders to the stack, files scanned here
    /// (or shared).
    fn entries(
        &self,
        scanner: &mut Scanner<'_>,
        folder: &Folder,
        dir: BorrowedFd<'_>,
        entries: Entries,
    ) {
        let mut files = Vec::new();
        for (name, kind, ino) in entries {
            let kind = match kind {
                FileType::Unknown => {
                    match rfs::statat(dir, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW) {
                        Ok(st) => FileType::from_raw_mode(st.st_mode),
                        Err(_) => continue,
                    }
                }
                kind => kind,
            };
            let rel = shown_join(scanner, &folder.rel, name.as_bytes());
            let is_dir = match kind {
                FileType::Directory => true,
                FileType::RegularFile => false,
                FileType::Symlink => {
                    // Never followed; its target is searched as a name.
                    if let Ok(target) = rfs::readlinkat(dir, name.as_c_str(), Vec::new()) {
                        let mut found = Vec::new();
                        scanner.needles.search(target.as_bytes(), &mut found);
                        if !found.is_empty() {
                            scanner.report_name(&Place::file(rel), &found, "its link target");
                        }
                    }
                    continue;
                }
                // Devices, pipes, sockets: not read.
                _ => continue,
            };
            if mode_rule(&rel, is_dir).is_some() {
                if let Some(f) = rfs::statat(dir, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW)
                    .ok()
                    .and_then(|st| mode_finding(&rel, is_dir, st.st_mode))
                {
                    scanner.findings.push(f);
                }
            }
            if is_dir {
                let depth = folder.depth + 1;
                if depth >= self.limits.depth {
                    scanner.findings.push(Finding {
                        root: None,
                        path: rel,
                        member: None,
                        kind: Kind::NotSearched,
                        severity: Severity::Error,
                        message: format!(
                            "is {} folders deep: what it holds was not searched",
                            self.limits.depth
                        ),
                    });
                    continue;
                }
                self.push(Work::Folder(Folder {
                    path: folder.path.join(OsStr::from_bytes(name.as_bytes())),
                    rel,
                    ino,
                    depth,
                }));
                continue;
            }
            if self.files.fetch_add(1, Ordering::Relaxed) >= self.limits.files {
                if !self.full.swap(true, Ordering::Relaxed) {
                    scanner.findings.push(Finding {
                        root: None,
                        path: String::new(),
                        member: None,
                        kind: Kind::NotSearched,
                        severity: Severity::Error,
                        message: format!(
                            "holds more than {} files: the rest were not searched",
                            self.limits.files
                        ),
                    });
                }
                break;
            }
            files.push(Job { name, rel, ino });
        }
        // The files, scanned here through the open folder, a batch at a
        // time; once a worker is idle, the rest go on the stack for all
        // (a folder of large gzip files is not left to one worker).
        let mut rest = files.into_iter().peekable();
        while rest.peek().is_some() {
            let batch: Vec<Job> = rest.by_ref().take(BATCH).collect();
            if rest.peek().is_some() && self.someone_idle() {
                self.share(folder, rest.by_ref());
            }
            for job in batch {
                scan_file(scanner, dir, job, &self.links);
            }
        }
    }
}

/// A folder's entries as listed: name, type, inode number.
type Entries = Vec<(CString, FileType, u64)>;

/// Entries listed at once, at most.
const LISTING: usize = 4096;

/// The next entries of a folder; none at its end.
fn read_some(dir: &mut Dir) -> io::Result<Entries> {
    let mut entries = Vec::new();
    while entries.len() < LISTING {
        let Some(entry) = dir.read() else { break };
        let entry = entry?;
        let name = entry.file_name();
        if matches!(name.to_bytes(), b"." | b"..") {
            continue;
        }
        entries.push((name.to_owned(), entry.file_type(), entry.ino()));
    }
    Ok(entries)
}

/// Every object of the git repository whose git folder is `dir` (`rel` in
/// reports), each searched as a file of its own: the finding's member is
/// the object's id, and where a commit reaches it, the commit and path
/// (`<id> (<commit>:etc/app.conf)`).
fn git_objects(scanner: &mut Scanner<'_>, dir: &Path, rel: &str) {
    let repo = match git::Repo::open(dir) {
        Ok(repo) => repo,
        Err(e) => {
            scanner.findings.push(unreadable(
                rel.to_owned(),
                &e,
                "its git objects were not searched",
            ));
            return;
        }
    };
    let limits = git::Limits::default();
    let mark = scanner.findings.len();
    let mut hit_ids = std::collections::HashSet::new();
    for item in repo.objects(&limits) {
        match item {
            Ok(object) => {
                let id = git::hex(&object.id);
                let place = Place {
                    path: rel.to_owned(),
                    member: Some(id),
                };
                let before = scanner.findings.len();
                let size = object.data.len() as u64;
                scanner.reader(&place, &mut &object.data[..], size);
                if scanner.findings.len() > before {
                    hit_ids.insert(object.id);
                }
            }
            Err(skipped) => scanner.finding(
                &Place::file(rel.to_owned()),
                Kind::NotSearched,
                Severity::Warning,
                format!("a git object was not searched: {skipped}"),
            ),
        }
    }
    if hit_ids.is_empty() {
        return;
    }
    let named = git::paths(&repo, &hit_ids, &limits);
    let names: HashMap<String, String> = named
        .iter()
        .map(|(id, (commit, path))| (git::hex(id), format!("{commit}:{path}")))
        .collect();
    for f in &mut scanner.findings[mark..] {
        let Some(member) = f.member.as_mut() else {
            continue;
        };
        let id_len = member.find('!').unwrap_or(member.len());
        if let Some(name) = names.get(&member[..id_len]) {
            member.insert_str(id_len, &format!(" ({name})"));
        }
    }
}

/// `parent/name` for reports, lossy; a name that holds a secret is
/// reported and shown redacted (in every path below it too).
fn shown_join(scanner: &mut Scanner<'_>, parent: &str, name: &[u8]) -> String {
    let mut found = Vec::new();
    scanner.needles.search(name, &mut found);
    if found.is_empty() {
        return join(parent, name);
    }
    let rel = join(parent, REDACTED.as_bytes());
    scanner.report_name(&Place::file(rel.clone()), &found, "its name");
    rel
}

/// Most bytes of extended attribute names read per file, and of one
/// value: more is not searched.
const XATTR_NAMES: usize = 16 * 1024;
const XATTR_VALUE: usize = 64 * 1024;

/// Searches the names and values of the extended attributes of an open
/// file or folder.
fn search_xattrs(scanner: &mut Scanner<'_>, fd: BorrowedFd<'_>, rel: &str) {
    let len = match rfs::flistxattr_query(fd) {
        Ok(0) | Err(_) => return,
        Ok(n) => n,
    };
    let mut names = vec![0u8; len.min(XATTR_NAMES)];
    let names = match rfs::flistxattr(fd, &mut names[..]) {
        Ok(n) => names.get(..n).unwrap_or_default().to_vec(),
        Err(_) => {
            scanner.finding(
                &Place::file(rel.to_owned()),
                Kind::NotSearched,
                Severity::Warning,
                format!("its extended attributes were not searched: their names take more than {XATTR_NAMES} bytes"),
            );
            return;
        }
    };
    let mut found = Vec::new();
    let mut value = Vec::new();
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        scanner.needles.search(name, &mut found);
        let Ok(cname) = CString::new(name) else {
            continue;
        };
        value.resize(XATTR_VALUE, 0);
        if let Ok(n) = rfs::fgetxattr(fd, cname.as_c_str(), &mut value[..]) {
            scanner
                .needles
                .search(&value[..n.min(XATTR_VALUE)], &mut found);
        }
    }
    if !found.is_empty() {
        scanner.report_name(
            &Place::file(rel.to_owned()),
            &found,
            "an extended attribute",
        );
    }
}

/// `parent/name` for reports, lossy.
fn join(parent: &str, name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    if parent.is_empty() {
        name.into_owned()
    } else {
        format!("{parent}/{name}")
    }
}

/// A folder that cannot be listed (or read on): the audit is incomplete.
fn folder_unreadable(scanner: &mut Scanner<'_>, folder: &Folder, e: &io::Error) {
    let rel = folder.rel.clone();
    scanner
        .findings
        .push(unreadable(rel, e, "the audit is incomplete"));
}

fn unreadable(path: String, e: &io::Error, consequence: &str) -> Finding {
    Finding {
        root: None,
        path,
        member: None,
        kind: Kind::Unreadable,
        severity: Severity::Error,
        message: format!("cannot be read ({e}); {consequence}"),
    }
}

fn scan_batch(scanner: &mut Scanner<'_>, batch: Batch, links: &Links) {
    match open_dir(&batch.dir, batch.dir_ino) {
        Ok(dir) => {
            for job in batch.files {
                scan_file(scanner, dir.as_fd(), job, links);
            }
        }
        Err(e) => {
            for job in batch.files {
                scanner.findings.push(unreadable(
                    job.rel,
                    &e,
                    "the audit of this file is incomplete",
                ));
            }
        }
    }
}

/// Files with more than one link (a bare OSTree repository's deployment
/// is hard links into its objects), by device and inode: each is searched
/// once; its findings are said at the first of its paths in byte order
/// (the same whichever worker searched it).
type Links = Mutex<HashMap<(u64, u64), Linked>>;

#[derive(Default)]
struct Linked {
    paths: Vec<String>,
    findings: Vec<Finding>,
}

fn scan_file(scanner: &mut Scanner<'_>, dir: BorrowedFd<'_>, job: Job, links: &Links) {
    let place = Place::file(job.rel);
    match open_in(dir, &job.name, job.ino) {
        Ok((mut file, meta)) => {
            let linked = meta.nlink() > 1;
            if linked {
                let mut map = links.lock().unwrap_or_else(PoisonError::into_inner);
                let entry = map.entry((meta.dev(), meta.ino())).or_default();
                entry.paths.push(place.path.clone());
                if entry.paths.len() > 1 {
                    // Searched (or being searched) through another link.
                    return;
                }
            }
            let mark = scanner.findings.len();
            search_xattrs(scanner, file.as_fd(), &place.path);
            scanner.file(&place, &mut file, meta.len());
            if linked {
                let found = scanner.findings.split_off(mark);
                let mut map = links.lock().unwrap_or_else(PoisonError::into_inner);
                map.entry((meta.dev(), meta.ino()))
                    .or_default()
                    .findings
                    .extend(found);
            }
        }
        Err(e) => scanner.finding(
            &place,
            Kind::Unreadable,
            Severity::Error,
            format!("cannot be read ({e}); the audit of this file is incomplete"),
        ),
    }
}

/// The findings of linked files, each at the first of its paths.
fn linked_findings(links: Links) -> Vec<Finding> {
    let map = links.into_inner().unwrap_or_else(PoisonError::into_inner);
    let mut out = Vec::new();
    for (_, linked) in map {
        let Some(first) = linked.paths.iter().min().cloned() else {
            continue;
        };
        let searched = linked.paths.first().cloned().unwrap_or_default();
        for mut f in linked.findings {
            if f.path == searched {
                f.path = first.clone();
            }
            out.push(f);
        }
    }
    out
}

/// Opens the folder the walk listed; an error if it is another one now (a
/// link put in its place, say).
fn open_dir(path: &Path, ino: u64) -> io::Result<OwnedFd> {
    let dir = rfs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    if rfs::fstat(&dir)?.st_ino != ino {
        return Err(changed());
    }
    Ok(dir)
}

/// Opens the file the walk saw in `dir`, and its size: if it was replaced
/// since (by a link, say: never followed), it is not read.
fn open_in(dir: BorrowedFd<'_>, name: &CString, ino: u64) -> io::Result<(File, Metadata)> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::CLOEXEC;
    let file = match rfs::openat(dir, name.as_c_str(), flags, Mode::empty()) {
        Ok(fd) => File::from(fd),
        Err(rustix::io::Errno::LOOP) => return Err(changed()),
        Err(e) => return Err(e.into()),
    };
    let meta = file.metadata()?;
    if meta.ino() != ino || !meta.is_file() {
        return Err(changed());
    }
    Ok((file, meta))
}

fn changed() -> io::Error {
    io::Error::other("it changed while the audit ran")
}

#[cfg(test)]
mod tests {
    use std::os::unix::ffi::OsStrExt;

    use super::*;
    use crate::audit::scan::tests::{needles, SECRET};
    use crate::test_support::TestDir;

    fn limits(threads: usize) -> Limits {
        Limits {
            threads,
            depth: 4,
            ..Limits::default()
        }
    }

    fn found(findings: &[Finding]) -> Vec<(String, Kind)> {
        let mut found: Vec<_> = findings.iter().map(|f| (f.path.clone(), f.kind)).collect();
        found.sort();
        found
    }

    #[test]
    fn every_file_is_scanned_in_large_folders_and_deep_ones_are_said() {
        let dir = TestDir::new();
        // More entries than one listing part, the leak among the last.
        for i in 0..LISTING + 100 {
            dir.write(format!("big/f{i:05}"), b"nothing here");
        }
        dir.write("big/f04190", format!("x={SECRET}"));
        dir.write("a/b/c/leak.txt", format!("x={SECRET}"));
        dir.write("a/b/c/d/too-deep.txt", format!("x={SECRET}"));
        // A name that is not UTF-8: found, named lossily.
        let odd = dir.join("a").join(OsStr::from_bytes(b"odd-\xff"));
        std::fs::write(odd, format!("x={SECRET}")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.join("a/link")).unwrap();
        let needles = needles();
        for threads in [1, 2, 3] {
            let (findings, files) =
                walk_folder(dir.path(), &needles, &limits(threads), &Shared::default()).unwrap();
            assert_eq!(files, LISTING as u64 + 100 + 2, "{threads} threads");
            assert_eq!(
                found(&findings),
                vec![
                    ("a/b/c/d".to_owned(), Kind::NotSearched),
                    ("a/b/c/leak.txt".to_owned(), Kind::HostSecret),
                    ("a/odd-\u{fffd}".to_owned(), Kind::HostSecret),
                    ("big/f04190".to_owned(), Kind::HostSecret),
                ],
                "{threads} threads"
            );
        }
    }

    #[test]
    fn a_file_of_many_links_is_searched_once_and_said_at_its_first_path() {
        let dir = TestDir::new();
        dir.write("z/objects/ab/leak.file", format!("x={SECRET}"));
        for link in ["a/deploy/etc/leak.conf", "m/other/leak.conf"] {
            let to = dir.join(link);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::hard_link(dir.join("z/objects/ab/leak.file"), to).unwrap();
        }
        let needles = needles();
        for threads in [1, 2, 3] {
            let (findings, files) =
                walk_folder(dir.path(), &needles, &limits(threads), &Shared::default()).unwrap();
            assert_eq!(files, 3);
            assert_eq!(
                found(&findings),
                vec![("a/deploy/etc/leak.conf".to_owned(), Kind::HostSecret)],
                "{threads} threads"
            );
        }
    }

    #[test]
    fn the_file_limit_stops_the_walk_with_an_error() {
        let dir = TestDir::new();
        for i in 0..50 {
            dir.write(format!("d{}/f{i}", i % 5), b"nothing here");
        }
        let needles = needles();
        let limits = Limits {
            files: 20,
            ..limits(2)
        };
        let (findings, files) =
            walk_folder(dir.path(), &needles, &limits, &Shared::default()).unwrap();
        assert_eq!(files, 20);
        assert_eq!(found(&findings), vec![(String::new(), Kind::NotSearched)]);
    }
}
