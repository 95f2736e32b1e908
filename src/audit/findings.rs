//! What an audit reports and the bounds it keeps: a [`Finding`] (never a
//! secret: paths, members, kinds, names), the [`Limits`], and the modes
//! the staged secret files and folders must have.

use serde::Serialize;

use super::patterns::{self, Kind};
use crate::escape::escape;
use crate::report::Severity;

/// Bounds on what one audit reads, decodes and holds, counted in work
/// (bytes, entries, levels), never in time. Documented in docs/audit.md.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most regular files in one root.
    pub files: u64,
    /// Deepest folder below a root.
    pub depth: usize,
    /// A zip is read from memory: one up to this size is held to look
    /// inside; a larger one is only searched as raw bytes (a warning).
    pub container_bytes: u64,
    /// Most bytes decoded for one file of the image (a folder's file, or a
    /// member of a root archive), all members and nesting levels together.
    pub expanded_bytes: u64,
    /// Most bytes decoded in one run, all files together.
    pub run_bytes: u64,
    /// Most memory the decoders and held zips of one file may hold at
    /// once: a dictionary or window that does not fit is not searched.
    pub memory: u64,
    /// Most memory one decoder may hold: a dictionary or window of 64 MiB
    /// and the decoder's own buffers (`xz -9`: 64 MiB and 160 KiB;
    /// `zstd --long=26`: ruzstd's ring of 128 MiB, as it grows by powers
    /// of two). A larger window is refused by the decoder itself.
    pub dictionary: u64,
    /// Most members looked into per container.
    pub members: usize,
    /// Containers and compressed streams inside each other, this deep.
    pub nesting: usize,
    /// Worker threads for a folder.
    pub threads: usize,
}

const MIB: u64 = 1024 * 1024;

/// The deepest folder, and the longest path in bytes, that the readers of
/// a disk image's file system or of a repository's trees name (vfat,
/// OSTree): one bound for every reader, past which they stop and say so.
pub const TREE_DEPTH: usize = 256;
pub const PATH_BYTES: usize = 4096;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            files: 10_000_000,
            depth: 512,
            container_bytes: 64 * MIB,
            expanded_bytes: 256 * MIB,
            run_bytes: 64 * 1024 * MIB,
            memory: 144 * MIB,
            dictionary: 132 * MIB,
            members: 100_000,
            nesting: 8,
            threads: std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .min(8),
        }
    }
}

/// One thing found. Never holds a secret: names, paths and kinds only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The PATH as given, only when several were given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// Relative to the scanned root, `/`-separated.
    pub path: String,
    /// Inside an archive: the member, `!` between nesting levels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    pub kind: Kind,
    pub severity: Severity,
    pub message: String,
}

impl Finding {
    /// `error: var/lib/x.zip (member 'treehub.json'): holds ...`, escaped.
    /// A finding on the root itself (an empty path) is named by the root
    /// when it is known, else `.`, never by nothing.
    pub fn line(&self) -> String {
        let mut s = format!("{}: ", self.severity.as_str());
        match (&self.root, self.path.is_empty()) {
            (Some(root), true) => s.push_str(&escape(root)),
            (Some(root), false) => {
                s.push_str(&escape(root));
                s.push_str(": ");
                s.push_str(&escape(&self.path));
            }
            (None, true) => s.push('.'),
            (None, false) => s.push_str(&escape(&self.path)),
        }
        if let Some(m) = &self.member {
            s.push_str(&format!(" (member '{}')", escape(m)));
        }
        s.push_str(": ");
        s.push_str(&escape(&self.message));
        s
    }
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
pub fn mode_rule(path: &str, is_dir: bool) -> Option<(u32, &'static str)> {
    match (path, is_dir) {
        ("var/sota" | "var/sota/import", true) => Some((0o700, "aktualizr's storage folder")),
        (patterns::DEVICE_ZIP, false) => Some((0o600, "the device's provisioning archive")),
        ("var/sota/import/pkey.pem", false) => Some((0o600, "the device's private key")),
        _ => None,
    }
}
