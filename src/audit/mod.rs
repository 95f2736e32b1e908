//! The image audit (docs/audit.md): proves that no host secret of a
//! credentials archive reached a root file system: a folder, or a file
//! that holds one (a tar, cpio or zip, compressed or not), told by its
//! content.
//!
//! - [`patterns`]: what must never be there, from the archive (pure).
//! - [`scan`]: one file's bytes as a stream: digest, multi-pattern search,
//!   and every container and compressed stream inside, bounded.
//! - `decode`: the decompressors (gzip, zlib, deflate, bzip2, xz, lzma,
//!   lz4, zstd), streaming, each within a memory limit.
//! - `formats`: the archive readers (tar, cpio, ar, rpm, zip).
//! - `walk`: a folder, walked by the worker threads themselves (links
//!   never followed; names, link targets and extended attributes searched).
//! - `git`: git repositories, every object once, deltas applied;
//!   `ostree`: OSTree repositories, objects, commits and static deltas;
//!   `disk`: disk images (MBR/GPT, ext2/3/4, FAT) without mounting.
//! - [`findings`]: what an audit reports ([`Finding`]), its [`Limits`],
//!   and the modes staged secrets must have.
//! - [`source`]: bytes read at any offset (a file, memory, a slice of
//!   either), for the random-access readers.
//!
//! This file is the entry point: a folder, or a file whose content is an
//! archive, an image or a repository, searched; and the naming of OSTree
//! objects in findings.
//!
//! This is an input edge like [`crate::intake`]: everything it reads is
//! bounded by [`Limits`] (files, depth, bytes decoded, memory, members,
//! nesting).

pub(crate) mod decode;
// Until the lead reads disk images through it.
#[allow(dead_code)]
pub(crate) mod disk;
pub mod findings;
pub(crate) mod formats;

pub(crate) mod git;
// Parts (is_delta_part, refs, ...) only the tests and the naming use yet.
#[allow(dead_code)]
pub(crate) mod ostree;
pub mod patterns;
pub mod scan;
pub mod source;
mod walk;

use std::fs::File;
use std::path::Path;

use crate::error::{Error, Result};
use crate::escape::escape;
pub use findings::{mode_finding, Finding, Limits};
pub use patterns::{Kind, Needles};
use scan::{Place, Scanner, Shared};

/// What an audit of one root found, and how much it looked at.
#[derive(Debug, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub files: u64,
}

/// Audits one root: a folder, or a file holding a root file system (a tar,
/// cpio or zip, plain or compressed). `Err` when the root cannot be read
/// (exit 3) or is not one of those (exit 1); everything below is a finding.
pub fn audit(root: &Path, needles: &Needles, limits: &Limits) -> Result<Report> {
    let meta = std::fs::metadata(root).map_err(|e| Error::io("read", root, e))?;
    let shared = Shared::default();
    let mut report = if meta.is_dir() {
        // Unreadable at the top is no finding: nothing was audited.
        std::fs::read_dir(root).map_err(|e| Error::io("read", root, e))?;
        let (mut findings, files) = walk::walk_folder(root, needles, limits, &shared)
            .map_err(|e| Error::io("read", root, e))?;
        name_and_allow(root, &mut findings);
        Report { findings, files }
    } else if meta.is_file() {
        audit_file(root, meta.len(), needles, limits, &shared)?
    } else {
        return Err(not_an_image(root, "is neither a folder nor a regular file"));
    };
    report.findings.sort_by(|a, b| {
        (&a.path, &a.member, a.kind, &a.message).cmp(&(&b.path, &b.member, b.kind, &b.message))
    });
    report.findings.dedup();
    Ok(report)
}

fn not_an_image(root: &Path, why: &str) -> Error {
    Error::Invalid(format!(
        "{}: {why}; give a root file system: a folder (IMAGE_ROOTFS), a tar, cpio or zip of one, or a disk or file system image (wic, ext4, FAT), plain or compressed with gzip, bzip2, xz, lzma, lz4 or zstd",
        escape(&root.display().to_string())
    ))
}

/// A file as the root: checked to be an archive by its content first
/// (never echoing it), then read with its members as the root's files.
fn audit_file(
    root: &Path,
    size: u64,
    needles: &Needles,
    limits: &Limits,
    shared: &Shared,
) -> Result<Report> {
    if size == 0 {
        return Err(not_an_image(root, "is empty"));
    }
    let open = || File::open(root).map_err(|e| Error::io("open", root, e));
    let kind = scan::root_kind(&mut open()?, limits).map_err(|e| Error::io("read", root, e))?;
    if let Err(why) = kind {
        return Err(not_an_image(root, &why));
    }
    let name = root
        .file_name()
        .map(|n| String::from_utf8_lossy(std::os::unix::ffi::OsStrExt::as_bytes(n)).into_owned())
        .unwrap_or_else(|| root.display().to_string());
    let mut scanner = Scanner::new(needles, limits, shared);
    let mut file = open()?;
    let files = match scanner.root_file(&Place::file(name.clone()), &mut file, size) {
        Ok(files) => files,
        Err(e) => return Err(Error::io("read", root, e)),
    };
    Ok(Report {
        findings: scanner.findings,
        files,
    })
}

/// Audits what one ref (or commit id) of the OSTree repository `repo`
/// reaches, and nothing else: the commit object, its dirtrees and every
/// content object of its tree, each searched as a file (a content in
/// several places once), findings named `NAME!/path`. What an image build
/// just committed, before meta-updater pushes it: the repository keeps
/// every earlier build, which the whole-repository audit searches.
pub fn audit_ostree_ref(
    repo: &Path,
    name: &str,
    needles: &Needles,
    limits: &Limits,
) -> Result<Report> {
    use std::collections::{HashMap, HashSet};
    use std::os::unix::fs::OpenOptionsExt;
    let meta = std::fs::metadata(repo).map_err(|e| Error::io("read", repo, e))?;
    let mode = match ostree::is_repo(repo) {
        Some(mode) if meta.is_dir() => mode,
        _ => {
            return Err(Error::Invalid(format!(
                "{}: is not an OSTree repository (no config with a [core] mode and no objects folder): only an OSTree repository has refs",
                escape(&repo.display().to_string())
            )))
        }
    };
    let Some((rev, contents)) = ostree::commit_contents(repo, name) else {
        return Err(Error::Invalid(format!(
            "{}: no ref and no commit `{}` in this OSTree repository",
            escape(&repo.display().to_string()),
            escape(name)
        )));
    };
    let content_ext = if mode == ostree::Mode::Archive {
        "filez"
    } else {
        "file"
    };
    let object = |sum: &[u8; 32], ext: &str| {
        let hex = ostree::hex(sum);
        format!("objects/{}/{}.{ext}", &hex[..2], &hex[2..])
    };
    let mut list: Vec<(String, Option<String>)> = vec![(object(&rev, "commit"), None)];
    list.extend(contents.trees.iter().map(|t| (object(t, "dirtree"), None)));
    let mut seen = HashSet::new();
    for (sum, path) in &contents.files {
        if seen.insert(*sum) {
            list.push((object(sum, content_ext), Some(path.clone())));
        }
    }
    let shared = Shared::default();
    let mut scanner = Scanner::new(needles, limits, &shared);
    let mut names: HashMap<String, String> = HashMap::new();
    let mut files = 0u64;
    for (rel, path) in list {
        let place = Place::file(rel.clone());
        let opened = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(repo.join(&rel));
        match opened.and_then(|f| f.metadata().map(|m| (f, m))) {
            Ok((mut file, m)) if m.is_file() => {
                files += 1;
                scanner.file(&place, &mut file, m.len());
            }
            Ok(_) | Err(_) => scanner.finding(
                &place,
                Kind::Unreadable,
                crate::report::Severity::Error,
                format!("is an object of {} that cannot be read (missing, or not a regular file); the audit of the commit is incomplete", escape(name)),
            ),
        }
        if let Some(path) = path {
            names.insert(rel, path);
        }
    }
    let mut findings = scanner.findings;
    for f in &mut findings {
        if let Some(path) = names.get(&f.path) {
            name_member(f, name, path);
        }
    }
    findings.retain(|f| !device_zip_in_place(f));
    findings.sort_by(|a, b| {
        (&a.path, &a.member, a.kind, &a.message).cmp(&(&b.path, &b.member, b.kind, &b.message))
    });
    findings.dedup();
    Ok(Report { findings, files })
}

/// Names a finding in an object by where the object is reached:
/// `at!path`, then the member inside it (a decoded stream's
/// `(... content)` label is dropped: the path names the content).
fn name_member(f: &mut Finding, at: &str, path: &str) {
    let inner = f
        .member
        .take()
        .filter(|m| !m.starts_with('('))
        .map(|m| format!("!{m}"))
        .unwrap_or_default();
    f.member = Some(format!("{at}!{path}{inner}"));
}

/// The shared p12 found in an OSTree object that the naming shows is the
/// device zip in its place (`REV!/var/sota/...`): no finding.
fn device_zip_in_place(f: &Finding) -> bool {
    f.kind == Kind::DeviceSecretMisplaced
        && Place {
            path: f.path.clone(),
            member: f.member.clone(),
        }
        .is_device_zip()
}

/// Findings in the content objects of an OSTree repository (`objects/
/// ab/cdef....filez` or `.file`) are named by where a commit puts them:
/// the member becomes `REF!/usr/share/app/treehub.json` (or
/// `commit:REV!/...` for a commit no ref names). An object no commit
/// reaches keeps its object path alone.
fn name_ostree_objects(root: &Path, findings: &mut [Finding]) {
    use std::collections::{BTreeMap, HashSet};
    // Repository folder (relative) -> the findings in its objects.
    let mut repos: BTreeMap<String, Vec<(usize, [u8; 32])>> = BTreeMap::new();
    for (i, f) in findings.iter().enumerate() {
        let Some(at) = f.path.rfind("objects/") else {
            continue;
        };
        if at > 0 && !f.path[..at].ends_with('/') {
            continue;
        }
        let Some((sum, kind)) = ostree::object_id(Path::new(&f.path)) else {
            continue;
        };
        if matches!(kind, ostree::ObjectType::File | ostree::ObjectType::Filez) {
            let repo = f.path[..at].trim_end_matches('/').to_owned();
            repos.entry(repo).or_default().push((i, sum));
        }
    }
    for (repo, hits) in repos {
        let dir = root.join(&repo);
        if ostree::is_repo(&dir).is_none() {
            continue;
        }
        let wanted: HashSet<[u8; 32]> = hits.iter().map(|(_, sum)| *sum).collect();
        let names = ostree::paths(&dir, &wanted);
        for (i, sum) in hits {
            let Some((reached_by, path)) = names.get(&sum) else {
                continue;
            };
            let f = &mut findings[i];
            name_member(f, reached_by, path);
        }
    }
}

/// [`name_ostree_objects`], then the device zip in its place dropped.
fn name_and_allow(root: &Path, findings: &mut Vec<Finding>) {
    name_ostree_objects(root, findings);
    findings.retain(|f| !device_zip_in_place(f));
}
