//! What an audit reports and the bounds it keeps: a [`Finding`] (never a
//! secret: paths, members, kinds, names) and the [`Limits`].

use serde::Serialize;

use super::patterns::Kind;
use crate::escape::escape;
use crate::report::Severity;

/// Bounds on what one audit reads and holds. Documented in docs/audit.md.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most regular files in one root.
    pub files: u64,
    /// Deepest folder below a root.
    pub depth: usize,
    /// A zip, gzip or tar file up to this size is held in memory to look
    /// inside; a larger one is only searched as raw bytes (a warning).
    pub container_bytes: u64,
    /// Largest member (or gzip content) decompressed and searched.
    pub member_bytes: u64,
    /// Most bytes decompressed for one file of the image, all members and
    /// nesting levels together.
    pub expanded_bytes: u64,
    /// Most members looked into per container.
    pub members: usize,
    /// Containers inside containers, this deep.
    pub nesting: usize,
    /// Worker threads for a folder.
    pub threads: usize,
}

const MIB: u64 = 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            files: 10_000_000,
            depth: 512,
            container_bytes: 64 * MIB,
            member_bytes: 64 * MIB,
            expanded_bytes: 256 * MIB,
            members: 100_000,
            nesting: 3,
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
    pub fn line(&self) -> String {
        let mut s = format!("{}: ", self.severity.as_str());
        if let Some(root) = &self.root {
            s.push_str(&escape(root));
            s.push_str(": ");
        }
        s.push_str(&escape(&self.path));
        if let Some(m) = &self.member {
            s.push_str(&format!(" (member '{}')", escape(m)));
        }
        s.push_str(": ");
        s.push_str(&escape(&self.message));
        s
    }
}
