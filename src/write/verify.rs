//! `verify`'s comparison: reads the roots and reports every way they
//! differ from a manifest. Reads only; [`crate::write::apply`] is the one
//! writer.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Read as _};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::aktualizr::paths::OWNED_DIRS;
use crate::digest::hex;
use crate::error::{Error, Result};
use crate::files;
use crate::intake::catalogue::Side;
use crate::plan::files::is_within;
use crate::plan::manifest::{Manifest, ManifestFile};
use crate::write::apply::Roots;

/// One way a root differs from its manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Difference {
    Missing {
        root: Side,
        path: String,
    },
    Changed {
        root: Side,
        path: String,
    },
    Moded {
        root: Side,
        path: String,
        expected: String,
        actual: String,
    },
    Extra {
        root: Side,
        path: String,
    },
    /// Something else than the manifest lists: a symlink, a folder, a
    /// file where a folder belongs.
    Type {
        root: Side,
        path: String,
        expected: &'static str,
        actual: &'static str,
    },
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Difference::Missing { root, path } => write!(f, "missing: {}:{path}", root.as_str()),
            Difference::Changed { root, path } => {
                write!(f, "changed: {}:{path} (content differs)", root.as_str())
            }
            Difference::Moded {
                root,
                path,
                expected,
                actual,
            } => write!(
                f,
                "mode: {}:{path} is {actual}, the manifest says {expected}",
                root.as_str()
            ),
            Difference::Extra { root, path } => {
                write!(f, "extra: {}:{path} is not in the manifest", root.as_str())
            }
            Difference::Type {
                root,
                path,
                expected,
                actual,
            } => write!(
                f,
                "type: {}:{path} is {actual}, the manifest says {expected}",
                root.as_str()
            ),
        }
    }
}

/// Compares the roots with the manifest. Every listed file is read and
/// hashed; every folder that holds a listed file is searched for files the
/// manifest does not list. Files of a root that was not given are skipped.
pub fn verify(manifest: &Manifest, roots: &Roots<'_>) -> Result<Vec<Difference>> {
    let mut out = Vec::new();
    for root in [Side::Device, Side::Host] {
        let Some(base) = roots.get(root) else {
            continue;
        };
        // A root that is not there (a mistyped path) is one error, not a
        // "missing" line for every file of the manifest.
        let op = match root {
            Side::Device => "read the device root",
            Side::Host => "read the host root",
        };
        match fs::metadata(base) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(Error::io(op, base, rustix::io::Errno::NOTDIR.into())),
            Err(e) => return Err(Error::io(op, base, e)),
        }
        let files: Vec<&ManifestFile> = manifest.files.iter().filter(|f| f.root == root).collect();
        let listed: BTreeSet<&str> = files.iter().map(|f| f.path.as_str()).collect();
        // Folders that are the tool's own are searched for strays: every
        // folder of the host root, and on the device those under
        // `var/sota` and `usr/lib/sota`. `usr`, `var` and the root itself
        // may hold anything else of the recipe's.
        let mut owned: BTreeSet<String> = BTreeSet::new();
        let mut ancestors: BTreeSet<String> = BTreeSet::new();
        for f in &files {
            let mut parts: Vec<&str> = f.path.split('/').collect();
            parts.pop();
            for n in 0..=parts.len() {
                let folder = parts[..n].join("/");
                if root == Side::Host || OWNED_DIRS.iter().any(|o| is_within(&folder, o)) {
                    owned.insert(folder.clone());
                }
                ancestors.insert(folder);
            }
        }
        for f in &files {
            let path = base.join(&f.path);
            let meta = match fs::symlink_metadata(&path) {
                Ok(m) if m.file_type().is_file() => m,
                Ok(m) => {
                    out.push(Difference::Type {
                        root,
                        path: f.path.clone(),
                        expected: "a file",
                        actual: what(&m),
                    });
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    out.push(Difference::Missing {
                        root,
                        path: f.path.clone(),
                    });
                    continue;
                }
                Err(e) => return Err(Error::io("look at", &path, e)),
            };
            if !same_content(&path, meta.len(), f)? {
                out.push(Difference::Changed {
                    root,
                    path: f.path.clone(),
                });
            }
            let actual = format!("{:04o}", meta.permissions().mode() & 0o7777);
            if actual != f.mode {
                out.push(Difference::Moded {
                    root,
                    path: f.path.clone(),
                    expected: f.mode.clone(),
                    actual,
                });
            }
        }
        for d in manifest.dirs.iter().filter(|d| d.root == root) {
            let path = base.join(&d.path);
            match fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => {
                    let actual = format!("{:04o}", m.permissions().mode() & 0o7777);
                    if actual != d.mode {
                        out.push(Difference::Moded {
                            root,
                            path: d.path.clone(),
                            expected: d.mode.clone(),
                            actual,
                        });
                    }
                }
                Ok(m) => out.push(Difference::Type {
                    root,
                    path: d.path.clone(),
                    expected: "a folder",
                    actual: what(&m),
                }),
                Err(e) if e.kind() == io::ErrorKind::NotFound => out.push(Difference::Missing {
                    root,
                    path: d.path.clone(),
                }),
                Err(e) => return Err(Error::io("look at", &path, e)),
            }
        }
        for folder in &owned {
            let dir = if folder.is_empty() {
                base.to_path_buf()
            } else {
                base.join(folder)
            };
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("list", &dir, e)),
            };
            let mut names = Vec::new();
            for entry in entries {
                let entry = entry.map_err(|e| Error::io("list", &dir, e))?;
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
            names.sort();
            for name in names {
                let rel = if folder.is_empty() {
                    name
                } else {
                    format!("{folder}/{name}")
                };
                if !listed.contains(rel.as_str()) && !ancestors.contains(&rel) {
                    out.push(Difference::Extra { root, path: rel });
                }
            }
        }
    }
    Ok(out)
}

/// What a thing that is not what the manifest says is, in words.
fn what(meta: &fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_symlink() {
        "a symlink"
    } else if t.is_dir() {
        "a folder"
    } else if t.is_file() {
        "a file"
    } else {
        "a special file"
    }
}

/// Whether the regular file at `path` (of `len` bytes when looked at) holds
/// what the manifest says. A file of another size differs without being
/// read; otherwise at most the manifest's size plus one byte is read and
/// hashed as it streams, so a file that grew, or was replaced by something
/// endless, costs no more than the staged one.
fn same_content(path: &Path, len: u64, f: &ManifestFile) -> Result<bool> {
    if len != f.size {
        return Ok(false);
    }
    let file = files::open_no_follow(path).map_err(|e| Error::io("open", path, e))?;
    let meta = file.metadata().map_err(|e| Error::io("read", path, e))?;
    if !meta.is_file() {
        return Ok(false);
    }
    let mut hasher = Sha256::new();
    let read = io::copy(&mut file.take(f.size + 1), &mut hasher)
        .map_err(|e| Error::io("read", path, e))?;
    Ok(read == f.size && hex(&hasher.finalize()) == f.sha256)
}
