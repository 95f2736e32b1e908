//! What a plan is made of: the files and folders to stage, and their modes
//! (design.md section 4). A mode follows from what a file or folder is,
//! in one place: [`file_mode`] and [`dir_mode`].

use crate::aktualizr::paths::{IMPORT_DIR, OWNED_DIRS, SOTA_DIR};
use crate::intake::catalogue::Side;
use crate::plan::methods::Method;
use crate::report::Problem;
use crate::secret::Secret;

/// Mode of secrets: keys, p12s, zips holding them, fragments with a PIN or
/// password.
pub const MODE_SECRET: u32 = 0o600;
/// Mode of every other file.
pub const MODE_FILE: u32 = 0o644;
/// Mode of `var/sota` and `var/sota/import`: aktualizr keeps keys there.
pub const MODE_PRIVATE_DIR: u32 = 0o700;
/// Mode of every other folder.
pub const MODE_DIR: u32 = 0o755;

/// The mode of a staged file: set, never inherited from the archive or the
/// umask.
pub fn file_mode(secret: bool) -> u32 {
    if secret {
        MODE_SECRET
    } else {
        MODE_FILE
    }
}

/// The mode of a folder the tool creates or checks.
pub fn dir_mode(side: Side, path: &str) -> u32 {
    if side == Side::Device && (path == SOTA_DIR || path == IMPORT_DIR) {
        MODE_PRIVATE_DIR
    } else {
        MODE_DIR
    }
}

/// One file to stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    pub side: Side,
    /// Relative, `/`-separated.
    pub path: String,
    pub contents: Secret<Vec<u8>>,
    pub secret: bool,
}

impl FileSpec {
    pub fn new(side: Side, path: impl Into<String>, contents: Vec<u8>, secret: bool) -> Self {
        FileSpec {
            side,
            path: path.into(),
            contents: Secret::new(contents),
            secret,
        }
    }

    pub fn mode(&self) -> u32 {
        file_mode(self.secret)
    }
}

/// One folder to create or check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirSpec {
    pub side: Side,
    pub path: String,
    /// [`dir_mode`] of the folder, or, in a device bundle, of the device
    /// folder it stands for.
    pub mode: u32,
}

impl DirSpec {
    pub fn mode(&self) -> u32 {
        self.mode
    }

    /// A folder that is the tool's alone: on the device those under
    /// `var/sota` and `usr/lib/sota`, on the host every folder below the
    /// root. Its mode is set on every run and recorded in the manifest;
    /// `usr`, `var` and the roots belong to the recipe.
    pub fn owned(&self) -> bool {
        self.side == Side::Host || OWNED_DIRS.iter().any(|o| is_within(&self.path, o))
    }
}

/// The suffixes of the names a run gives its temporaries and the files it
/// moves aside: `.NAME.sota-stage-PID.tmp`, `.NAME.sota-stage-PID.old`.
pub const TEMP: &str = "tmp";
pub const OLD: &str = "old";

/// `.NAME.sota-stage-PID.KIND` -> (NAME, KIND): a name only this tool
/// makes, which the next run removes as the leftover of a killed one.
pub fn leftover(name: &str) -> Option<(&str, &'static str)> {
    let rest = name.strip_prefix('.')?;
    let (rest, kind) = if let Some(r) = rest.strip_suffix(".tmp") {
        (r, TEMP)
    } else {
        (rest.strip_suffix(".old")?, OLD)
    };
    let (original, pid) = rest.rsplit_once(".sota-stage-")?;
    let is_pid = !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit());
    (is_pid && !original.is_empty()).then_some((original, kind))
}

/// `path` is `folder` or inside it (relative, `/`-separated).
pub fn is_within(path: &str, folder: &str) -> bool {
    path == folder
        || path
            .strip_prefix(folder)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Everything to stage, checked, before the first write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub method: Method,
    pub credentials_sha256: String,
    /// Sorted by side, then path.
    pub files: Vec<FileSpec>,
    /// Parents before children.
    pub dirs: Vec<DirSpec>,
    /// Files the tool stages in other runs (another method, other options)
    /// but not in this one: removed with force, refused without.
    pub retired: Vec<(Side, String)>,
    /// Problems that do not stop staging, for the user to read.
    pub warnings: Vec<Problem>,
}

impl Plan {
    /// A plan of `files`: sorted, with every folder they need.
    pub fn new(
        method: Method,
        credentials_sha256: String,
        mut files: Vec<FileSpec>,
        warnings: Vec<Problem>,
    ) -> Plan {
        files.sort_by(|a, b| (a.side, a.path.as_bytes()).cmp(&(b.side, b.path.as_bytes())));
        let dirs = folders(&files);
        Plan {
            method,
            credentials_sha256,
            files,
            dirs,
            retired: Vec::new(),
            warnings,
        }
    }
}

/// Every folder the files need, parents first.
fn folders(files: &[FileSpec]) -> Vec<DirSpec> {
    // A set, not a scan of the list per folder: a plan of 100,000 bundles
    // has 400,000 folders.
    let mut seen: std::collections::HashSet<(Side, &str)> = std::collections::HashSet::new();
    let mut dirs: Vec<DirSpec> = Vec::new();
    for file in files {
        let mut end = 0;
        while let Some(slash) = file.path.get(end..).and_then(|rest| rest.find('/')) {
            end += slash;
            let path = file.path.get(..end).unwrap_or_default();
            if seen.insert((file.side, path)) {
                dirs.push(DirSpec {
                    side: file.side,
                    path: path.to_string(),
                    mode: dir_mode(file.side, path),
                });
            }
            end += 1;
        }
    }
    dirs.sort_by(|a, b| (a.side, a.path.as_bytes()).cmp(&(b.side, b.path.as_bytes())));
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_follow_from_what_a_thing_is() {
        assert_eq!(file_mode(true), 0o600);
        assert_eq!(file_mode(false), 0o644);
        assert_eq!(dir_mode(Side::Device, "var/sota"), 0o700);
        assert_eq!(dir_mode(Side::Device, "var/sota/import"), 0o700);
        assert_eq!(dir_mode(Side::Device, "var/sota/import/repo"), 0o755);
        assert_eq!(dir_mode(Side::Host, "var/sota"), 0o755);
    }

    #[test]
    fn folders_parents_first() {
        let plan = Plan::new(
            Method::SharedCred,
            String::new(),
            vec![
                FileSpec::new(Side::Host, "x", vec![], true),
                FileSpec::new(
                    Side::Device,
                    "var/sota/import/repo/root.json",
                    vec![],
                    false,
                ),
                FileSpec::new(Side::Device, "usr/lib/sota/conf.d/a.toml", vec![], false),
            ],
            Vec::new(),
        );
        let dirs: Vec<_> = plan.dirs.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(
            dirs,
            [
                "usr",
                "usr/lib",
                "usr/lib/sota",
                "usr/lib/sota/conf.d",
                "var",
                "var/sota",
                "var/sota/import",
                "var/sota/import/repo"
            ]
        );
        assert_eq!(plan.files[0].path, "usr/lib/sota/conf.d/a.toml");
        assert_eq!(plan.files[2].side, Side::Host);
    }
}
