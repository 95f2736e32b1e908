//! The manifest of a staging run (design.md section 6), and `verify`, which
//! compares the roots with it.
//!
//! The manifest holds no path of the build host, no time and no secret:
//! relative paths, digests, sizes, modes. Two runs with the same inputs give
//! the same bytes.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;

use serde::{Deserialize, Serialize};

use crate::aktualizr::paths::OWNED_DIRS as DEVICE_OWNED;
use crate::digest::sha256_hex;
use crate::error::{Error, Result};
use crate::plan::layout::{Plan, Root};
use crate::plan::methods::Method;
use crate::write::apply::Roots;

pub const SCHEMA: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub schema: u32,
    pub tool_version: String,
    pub method: Method,
    /// sha256 of the credentials archive (never its path).
    pub credentials_sha256: String,
    /// Sorted by root, then path.
    pub files: Vec<ManifestFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestFile {
    pub root: Root,
    /// Relative to the root, `/`-separated.
    pub path: String,
    pub sha256: String,
    pub size: u64,
    /// Octal, four digits: `"0644"`.
    pub mode: String,
    pub secret: bool,
}

impl Manifest {
    pub fn from_plan(plan: &Plan) -> Self {
        Manifest {
            schema: SCHEMA,
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            method: plan.method,
            credentials_sha256: plan.credentials_sha256.clone(),
            files: plan
                .files
                .iter()
                .map(|f| ManifestFile {
                    root: f.root,
                    path: f.path.clone(),
                    sha256: sha256_hex(f.contents.expose()),
                    size: f.contents.expose().len() as u64,
                    mode: format!("{:04o}", f.mode),
                    secret: f.secret,
                })
                .collect(),
        }
    }

    /// Pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        let mut out = serde_json::to_string_pretty(self).unwrap_or_default();
        out.push('\n');
        out
    }

    /// Reads a manifest; `label` names it in messages.
    pub fn parse(label: &str, text: &[u8]) -> Result<Self> {
        let m: Manifest = serde_json::from_slice(text)
            .map_err(|e| Error::Invalid(format!("{label}: not a sota-stage manifest ({e})")))?;
        if m.schema != SCHEMA {
            return Err(Error::Invalid(format!(
                "{label}: manifest schema {} is not supported (this sota-stage reads schema {SCHEMA})",
                m.schema
            )));
        }
        for f in &m.files {
            let unsafe_path = f.path.is_empty()
                || f.path.starts_with('/')
                || f.path
                    .split('/')
                    .any(|p| p.is_empty() || p == "." || p == "..");
            if unsafe_path || parse_mode(&f.mode).is_none() {
                return Err(Error::Invalid(format!(
                    "{label}: entry `{}` has an unsafe path or a bad mode `{}`",
                    f.path.escape_debug(),
                    f.mode.escape_debug()
                )));
            }
        }
        Ok(m)
    }

    /// `sha256sum -c` input for one root: `<digest>  <prefix>/<path>`.
    pub fn sha256sum(&self, root: Root, prefix: &str) -> String {
        self.files
            .iter()
            .filter(|f| f.root == root)
            .map(|f| {
                format!(
                    "{}  {}/{}\n",
                    f.sha256,
                    prefix.trim_end_matches('/'),
                    f.path
                )
            })
            .collect()
    }
}

fn parse_mode(mode: &str) -> Option<u32> {
    if mode.len() != 4 {
        return None;
    }
    u32::from_str_radix(mode, 8).ok()
}

/// `path` is `folder` or inside it.
fn is_within(path: &str, folder: &str) -> bool {
    path == folder
        || path
            .strip_prefix(folder)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// One way a root differs from its manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Difference {
    Missing {
        root: Root,
        path: String,
    },
    Changed {
        root: Root,
        path: String,
    },
    Moded {
        root: Root,
        path: String,
        expected: String,
        actual: String,
    },
    Extra {
        root: Root,
        path: String,
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
        }
    }
}

/// Compares the roots with the manifest. Every listed file is read and
/// hashed; every folder that holds a listed file is searched for files the
/// manifest does not list. Files of a root that was not given are skipped.
pub fn verify(manifest: &Manifest, roots: &Roots<'_>) -> Result<Vec<Difference>> {
    let mut out = Vec::new();
    for root in [Root::Device, Root::Host] {
        let Some(base) = (match root {
            Root::Device => Some(roots.device),
            Root::Host => roots.host,
        }) else {
            continue;
        };
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
                if root == Root::Host || DEVICE_OWNED.iter().any(|o| is_within(&folder, o)) {
                    owned.insert(folder.clone());
                }
                ancestors.insert(folder);
            }
        }
        for f in &files {
            let path = base.join(&f.path);
            let meta = match fs::symlink_metadata(&path) {
                Ok(m) if m.file_type().is_file() => m,
                Ok(_) => {
                    out.push(Difference::Changed {
                        root,
                        path: f.path.clone(),
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
            let bytes = fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
            if bytes.len() as u64 != f.size || sha256_hex(&bytes) != f.sha256 {
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
