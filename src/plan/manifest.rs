//! The manifest of a staging run (design.md section 6): made from a plan,
//! written as JSON, read back and checked for `verify`
//! ([`crate::write::verify`] compares the roots with it).
//!
//! The manifest holds no path of the build host, no time and no secret:
//! relative paths, digests, sizes, modes. Two runs with the same inputs give
//! the same bytes.

use serde::{Deserialize, Serialize};

use crate::digest::sha256_hex;
use crate::error::{Error, Result};
use crate::intake::catalogue::Side;
use crate::plan::files::Plan;
use crate::plan::methods::Method;

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
    /// The folders that are the tool's alone, with their modes, parents
    /// first. Absent from manifests written before it was added, which
    /// still read (their folders are not checked).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dirs: Vec<ManifestDir>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestDir {
    pub root: Side,
    /// Relative to the root, `/`-separated.
    pub path: String,
    /// Octal, four digits: `"0700"`.
    pub mode: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestFile {
    pub root: Side,
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
                    root: f.side,
                    path: f.path.clone(),
                    sha256: sha256_hex(f.contents.expose()),
                    size: f.contents.expose().len() as u64,
                    mode: format!("{:04o}", f.mode()),
                    secret: f.secret,
                })
                .collect(),
            dirs: plan
                .dirs
                .iter()
                .filter(|d| d.owned())
                .map(|d| ManifestDir {
                    root: d.side,
                    path: d.path.clone(),
                    mode: format!("{:04o}", d.mode()),
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
        let spec = m.method.spec();
        for required in spec.device_files.iter().filter(|f| !f.optional) {
            let listed = m
                .files
                .iter()
                .any(|f| f.root == Side::Device && f.path == required.path);
            if !listed {
                return Err(Error::Invalid(format!(
                    "{label}: the manifest does not list `{}`, which every {} image has; it was not written by `sota-stage stage`, or was cut short",
                    required.path, m.method
                )));
            }
        }
        let entries = m.files.iter().map(|f| (&f.path, &f.mode));
        for (path, mode) in entries.chain(m.dirs.iter().map(|d| (&d.path, &d.mode))) {
            let unsafe_path = path.is_empty()
                || path.starts_with('/')
                || path
                    .split('/')
                    .any(|p| p.is_empty() || p == "." || p == "..");
            if unsafe_path || parse_mode(mode).is_none() {
                return Err(Error::Invalid(format!(
                    "{label}: entry `{}` has an unsafe path or a bad mode `{}`",
                    path.escape_debug(),
                    mode.escape_debug()
                )));
            }
        }
        Ok(m)
    }

    /// `sha256sum -c` input for one root: `<digest>  <prefix>/<path>`.
    pub fn sha256sum(&self, root: Side, prefix: &str) -> String {
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

pub fn parse_mode(mode: &str) -> Option<u32> {
    if mode.len() != 4 {
        return None;
    }
    u32::from_str_radix(mode, 8).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::files::FileSpec;
    use crate::plan::methods::Method;

    fn manifest(method: Method, paths: &[&str]) -> Manifest {
        let files = paths
            .iter()
            .map(|p| FileSpec::new(Side::Device, *p, b"x".to_vec(), false))
            .collect();
        Manifest::from_plan(&Plan::new(method, "0".repeat(64), files, Vec::new()))
    }

    #[test]
    fn a_manifest_round_trips() {
        let m = manifest(
            Method::SharedCred,
            &["var/sota/sota_provisioning_credentials.zip"],
        );
        assert_eq!(
            Manifest::parse("m.json", m.to_json().as_bytes()).expect("parses"),
            m
        );
    }

    #[test]
    fn a_manifest_without_a_file_its_method_always_stages_is_refused() {
        // The method table says what every image of a method holds.
        let m = manifest(Method::DeviceCred, &["var/sota/import/gateway.url"]);
        let err = Manifest::parse("m.json", m.to_json().as_bytes())
            .expect_err("root.crt is missing")
            .to_string();
        assert!(
            err.starts_with("m.json: the manifest does not list `var/sota/import/root.crt`, which every device-cred image has"),
            "{err}"
        );
        // The device certificate is optional: its absence is fine.
        let m = manifest(
            Method::DeviceCred,
            &["var/sota/import/gateway.url", "var/sota/import/root.crt"],
        );
        assert!(Manifest::parse("m.json", m.to_json().as_bytes()).is_ok());
    }
}
