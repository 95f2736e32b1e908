//! The image audit (docs/audit.md): proves that no host secret of a
//! credentials archive reached a root file system, a folder or a tar of
//! one.
//!
//! - [`patterns`]: what must never be there, from the archive (pure).
//! - [`scan`]: one file's bytes: digest, multi-pattern search, containers;
//!   `inflate`: deflate data (gzip files, zip members) with reused state.
//! - `walk`: a folder, walked by the worker threads themselves (links
//!   never followed).
//! - here: a tar (plain, gzip, xz) streamed member by member, and the
//!   modes of the staged secret files and folders, checked on the way.
//!
//! This is an input edge like [`crate::intake`]: everything it reads is
//! bounded by [`Limits`] (files, depth, bytes held, bytes decompressed).

// Until the rewritten scanner uses all of it (only `xz_tar` does here).
#[allow(dead_code)]
pub(crate) mod decode;
pub mod findings;
mod inflate;
pub mod patterns;
pub mod scan;
mod walk;

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use crate::error::{Error, Result};
use crate::escape::escape;
use crate::report::Severity;
pub use findings::{mode_finding, Finding, Limits};
pub use patterns::{Kind, Needles};
use scan::{container, read_full, Scanner};

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
        let (findings, files) =
            walk::walk_folder(root, needles, limits).map_err(|e| Error::io("read", root, e))?;
        Report { findings, files }
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

/// xz through the streaming decoder (`decode`): it holds the stream's
/// dictionary, whatever the block size.
fn xz_tar(
    input: impl Read + Send,
    scanner: &mut Scanner<'_>,
    modes: &mut dyn FnMut(&str, bool, u32) -> Option<Finding>,
) -> io::Result<u64> {
    let mut decoder = decode::open(decode::Codec::Xz, Box::new(input), XZ_MEMORY)
        .map_err(|r| io::Error::new(io::ErrorKind::InvalidData, r.0))?;
    scanner.tar_root(&mut decoder, modes)
}

/// The most an xz root's decoder may hold: `xz -9`'s 64 MiB dictionary and
/// the decoder's buffers.
const XZ_MEMORY: u64 = 65 << 20;
