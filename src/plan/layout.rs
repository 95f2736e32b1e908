//! The split and the layout (design.md section 4): from a checked archive
//! and the options of one provisioning method, the full list of files and
//! folders to stage, with their bytes and modes. Pure: nothing is written
//! here; `stage` applies the plan.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::aktualizr::paths::{
    IMPORT_DIR, PROVISIONING_ZIP as DEVICE_ZIP, SOTA_DIR, SYSTEM_CONFIG_DIR as CONF_DIR,
};
use crate::checks::{EntryRole, Findings};
use crate::crypto::private_key::{self, PrivateKey};
use crate::crypto::x509::{self, CertInfo, Validity};
use crate::error::{Error, Result};
use crate::intake::archive::Archive;
use crate::intake::catalogue::{self, Role};
use crate::plan::methods::Method;
use crate::plan::render::{self, Template};
use crate::plan::zip;
use crate::report::Problem;
use crate::secret::Secret;

/// The two folders a recipe gives the tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Root {
    Device,
    Host,
}

impl Root {
    pub fn as_str(self) -> &'static str {
        match self {
            Root::Device => "device",
            Root::Host => "host",
        }
    }
}

/// Mode of secrets: keys, p12s, zips holding them, fragments with a PIN or
/// password.
pub const MODE_SECRET: u32 = 0o600;
/// Mode of every other file.
pub const MODE_FILE: u32 = 0o644;
/// Mode of `var/sota` and `var/sota/import`.
pub const MODE_PRIVATE_DIR: u32 = 0o700;
/// Mode of every other folder.
pub const MODE_DIR: u32 = 0o755;

/// The host-only archive for garage-push and garage-sign.
pub const HOST_ZIP: &str = "credentials.zip";

/// One file to stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    pub root: Root,
    /// Relative, `/`-separated.
    pub path: String,
    pub contents: Secret<Vec<u8>>,
    pub mode: u32,
    pub secret: bool,
}

/// One folder to create or check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirSpec {
    pub root: Root,
    pub path: String,
    pub mode: u32,
}

/// Everything to stage, checked, before the first write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub method: Method,
    pub credentials_sha256: String,
    /// Sorted by root, then path.
    pub files: Vec<FileSpec>,
    /// Parents before children.
    pub dirs: Vec<DirSpec>,
    /// Problems that do not stop staging, for the user to read.
    pub warnings: Vec<Problem>,
}

/// What to do with entries the catalogue does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum UnknownPolicy {
    /// Refuse the archive (the default).
    #[default]
    #[value(skip)]
    Refuse,
    /// Stage them on the host side, with the host tools' files.
    Host,
    /// Leave them out.
    Drop,
}

/// The `[p11]` settings of `device-cred-hsm`. Defaults: aktualizr's example
/// config (`config/sota-device-cred-hsm.toml`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hsm {
    pub module: String,
    pub pin: Secret<String>,
    pub tls_cert_id: String,
    pub tls_key_id: String,
    pub uptane_key_id: String,
}

impl Default for Hsm {
    fn default() -> Self {
        Hsm {
            module: "/usr/lib/softhsm/libsofthsm2.so".into(),
            pin: Secret::new("1234".into()),
            tls_cert_id: "01".into(),
            tls_key_id: "02".into(),
            uptane_key_id: "03".into(),
        }
    }
}

/// A device certificate and key supplied for `device-cred`, already
/// parsed; `layout` checks they belong together.
#[derive(Debug, Clone)]
pub struct DeviceCert {
    pub cert: CertInfo,
    pub key: PrivateKey,
}

/// The options of one staging run.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    pub method: Method,
    pub hardware_id: Option<String>,
    pub p12_password: Secret<String>,
    pub hsm: Hsm,
    pub device_cert: Option<DeviceCert>,
    pub root_pinning: bool,
    pub unknown: UnknownPolicy,
    /// A host root was given: plan the host side too.
    pub with_host: bool,
    /// `SOURCE_DATE_EPOCH`.
    pub epoch: i64,
    pub now: i64,
    pub template_dir: Option<&'a Path>,
}

/// A rendered fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    /// File name under `usr/lib/sota/conf.d`.
    pub name: String,
    pub text: Secret<String>,
    /// Holds a password or PIN.
    pub secret: bool,
}

/// Checks a hardware ID: meta-updater's pattern, non-empty.
pub fn check_hardware_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "hardware ID `{}` is not allowed: use letters, digits, `.`, `_` and `-` only (meta-updater's rule)",
            id.escape_debug()
        )))
    }
}

/// The config fragments of a method, rendered and checked.
pub fn fragments(opts: &Options<'_>) -> Result<Vec<Fragment>> {
    let import = format!("/{IMPORT_DIR}");
    let (template, data, secret): (Template, _, bool) = match opts.method {
        Method::SharedCred => (
            render::SHARED_CRED,
            json!({
                "provision_path": format!("/{DEVICE_ZIP}"),
                "p12_password": opts.p12_password.expose(),
            }),
            !opts.p12_password.expose().is_empty(),
        ),
        Method::DeviceCred => (
            render::DEVICE_CRED,
            json!({
                "server_url_path": format!("{import}/gateway.url"),
                "import_base_path": import,
                "tls_cacert_path": "root.crt",
                "tls_clientcert_path": "client.pem",
                "tls_pkey_path": "pkey.pem",
            }),
            false,
        ),
        Method::DeviceCredHsm => (
            render::DEVICE_CRED_HSM,
            json!({
                "server_url_path": format!("{import}/gateway.url"),
                "import_base_path": import,
                "tls_cacert_path": "root.crt",
                "p11_module": opts.hsm.module,
                "p11_pin": opts.hsm.pin.expose(),
                "p11_tls_cert_id": opts.hsm.tls_cert_id,
                "p11_tls_key_id": opts.hsm.tls_key_id,
                "p11_uptane_key_id": opts.hsm.uptane_key_id,
            }),
            true,
        ),
    };
    let mut out = vec![Fragment {
        name: template.file.trim_end_matches(".hbs").to_string(),
        text: Secret::new(render::render(template, &data, opts.template_dir)?),
        secret,
    }];
    if let Some(id) = &opts.hardware_id {
        check_hardware_id(id)?;
        out.push(Fragment {
            name: render::HARDWARE_ID
                .file
                .trim_end_matches(".hbs")
                .to_string(),
            text: Secret::new(render::render(
                render::HARDWARE_ID,
                &json!({ "hardware_id": id }),
                opts.template_dir,
            )?),
            secret: false,
        });
    }
    Ok(out)
}

/// Entries read by host tools: everything whose role is host, plus the
/// Uptane roots garage-sign and Torizon's classes read.
fn is_host_entry(name: &str) -> bool {
    catalogue::lookup(name).is_some_and(|k| {
        k.role == Role::Host || matches!(k.name, "root.json" | "director.root.json")
    })
}

/// Plans the whole staging run. `label` names the archive in messages.
pub fn plan(
    label: &str,
    archive: &Archive,
    findings: &Findings,
    opts: &Options<'_>,
) -> Result<Plan> {
    let method = opts.method;
    let missing = findings.offers.missing_for(method);
    let mut blocking: Vec<String> = findings
        .problems
        .iter()
        .filter(|p| p.is_error())
        .map(|p| p.message.clone())
        .collect();
    if !missing.is_empty() {
        blocking.push(format!(
            "the archive does not support {method}: it lacks {}",
            missing.join(" and ")
        ));
    }

    // The entries whose bytes (or a part of them) this run stages.
    let mut used: Vec<&str> = vec!["autoprov.url"];
    match method {
        Method::SharedCred => used.push("autoprov_credentials.p12"),
        Method::DeviceCred | Method::DeviceCredHsm => {
            if archive.entry("server_ca.pem").is_some() {
                used.push("server_ca.pem");
            }
        }
    }
    if opts.root_pinning {
        used.extend(["root.json", "director.root.json"]);
    }
    let mut warnings = Vec::new();
    let mut unknown = Vec::new();
    for entry in &findings.entries {
        let staged = used.contains(&entry.name.as_str())
            || (opts.with_host && is_host_entry(&entry.name))
            || (opts.with_host
                && entry.role == EntryRole::Unknown
                && opts.unknown == UnknownPolicy::Host);
        if entry.role == EntryRole::Unknown {
            unknown.push(entry.name.as_str());
            continue;
        }
        for p in &entry.problems {
            if !p.is_error() {
                warnings.push(p.clone());
            } else if staged {
                blocking.push(p.message.clone());
            } else {
                // An error in an entry this run does not stage is worth
                // reading, but the run succeeds: say so, as a warning.
                warnings.push(Problem::warning(format!(
                    "{} (not staged for {method})",
                    p.message
                )));
            }
        }
    }
    if !unknown.is_empty() && opts.unknown == UnknownPolicy::Refuse {
        blocking.push(format!(
            "unknown entries {}: say what to do with them with --unknown host (stage them with the host files) or --unknown drop",
            unknown.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ")
        ));
    }
    // The CA that becomes root.crt is judged on its own: for device-cred it
    // may come from a p12 whose client certificate is irrelevant.
    if method != Method::SharedCred {
        for ca in &findings.server_ca {
            let name = ca.common_name.as_deref().unwrap_or(&ca.subject);
            match x509::validity(ca, opts.now, crate::checks::EXPIRY_WARNING_DAYS) {
                Validity::Expired { .. } => blocking.push(format!(
                    "the server CA `{name}` expired on {}",
                    crate::time::format_date(ca.not_after)
                )),
                Validity::NotYetValid => {
                    blocking.push(format!("the server CA `{name}` is not valid yet"))
                }
                _ => {}
            }
        }
    }
    if let Some(dc) = &opts.device_cert {
        if method != Method::DeviceCred {
            return Err(Error::Usage(format!(
                "--device-cert and --device-key are for device-cred, not {method}"
            )));
        }
        check_device_cert(dc, opts.now, &mut blocking);
    }
    if !blocking.is_empty() {
        return Err(Error::Invalid(format!(
            "{label}: cannot stage for {method}:\n  - {}",
            blocking.join("\n  - ")
        )));
    }

    let mut files = Vec::new();
    let device = |path: &str, contents: Vec<u8>, secret: bool| FileSpec {
        root: Root::Device,
        path: path.to_string(),
        contents: Secret::new(contents),
        mode: if secret { MODE_SECRET } else { MODE_FILE },
        secret,
    };
    let entry_bytes = |name: &str| archive.entry(name).map(|e| e.data.clone());
    match method {
        Method::SharedCred => {
            let url = entry_bytes("autoprov.url").unwrap_or_default();
            let p12 = entry_bytes("autoprov_credentials.p12").unwrap_or_default();
            let zip = zip::build(
                &[("autoprov.url", &url), ("autoprov_credentials.p12", &p12)],
                opts.epoch,
            )?;
            files.push(device(DEVICE_ZIP, zip, true));
        }
        Method::DeviceCred | Method::DeviceCredHsm => {
            let url = findings
                .device_url
                .as_ref()
                .map(|u| u.text.clone())
                .unwrap_or_default();
            files.push(device(
                &format!("{IMPORT_DIR}/gateway.url"),
                url.into_bytes(),
                false,
            ));
            files.push(device(
                &format!("{IMPORT_DIR}/root.crt"),
                x509::to_pem(&findings.server_ca).into_bytes(),
                false,
            ));
            if let Some(dc) = &opts.device_cert {
                files.push(device(
                    &format!("{IMPORT_DIR}/client.pem"),
                    x509::to_pem(std::slice::from_ref(&dc.cert)).into_bytes(),
                    false,
                ));
                files.push(device(
                    &format!("{IMPORT_DIR}/pkey.pem"),
                    dc.key.to_pem().expose().clone().into_bytes(),
                    true,
                ));
            }
        }
    }
    for fragment in fragments(opts)? {
        files.push(device(
            &format!("{CONF_DIR}/{}", fragment.name),
            fragment.text.expose().clone().into_bytes(),
            fragment.secret,
        ));
    }
    if opts.root_pinning {
        for (entry, path) in [
            ("root.json", "repo/root.json"),
            ("director.root.json", "director/root.json"),
        ] {
            if let Some(bytes) = entry_bytes(entry) {
                files.push(device(&format!("{IMPORT_DIR}/{path}"), bytes, false));
            }
        }
    }

    if opts.with_host {
        let mut host_entries = Vec::new();
        for entry in &archive.entries {
            let known = catalogue::lookup(&entry.name);
            let wanted = match known {
                Some(_) => is_host_entry(&entry.name),
                None => opts.unknown == UnknownPolicy::Host,
            };
            if !wanted {
                continue;
            }
            // Unknown entries count as secret: nothing says they are not.
            let secret = known.map_or(true, |k| k.secret);
            host_entries.push((entry.name.as_str(), entry.data.as_slice()));
            files.push(FileSpec {
                root: Root::Host,
                path: entry.name.clone(),
                contents: Secret::new(entry.data.clone()),
                mode: if secret { MODE_SECRET } else { MODE_FILE },
                secret,
            });
        }
        if !host_entries.is_empty() {
            let zip = zip::build(&host_entries, opts.epoch)?;
            let secret = files.iter().any(|f| f.root == Root::Host && f.secret);
            files.push(FileSpec {
                root: Root::Host,
                path: HOST_ZIP.into(),
                contents: Secret::new(zip),
                mode: if secret { MODE_SECRET } else { MODE_FILE },
                secret,
            });
        }
    }

    files.sort_by(|a, b| (a.root, a.path.as_bytes()).cmp(&(b.root, b.path.as_bytes())));
    let dirs = folders(&files);
    Ok(Plan {
        method,
        credentials_sha256: archive.sha256.clone(),
        files,
        dirs,
        warnings,
    })
}

fn check_device_cert(dc: &DeviceCert, now: i64, blocking: &mut Vec<String>) {
    let name = dc.cert.common_name.as_deref().unwrap_or(&dc.cert.subject);
    match private_key::key_matches_cert(&dc.key, &dc.cert) {
        private_key::KeyMatch::Matches => {}
        private_key::KeyMatch::DoesNotMatch => blocking.push(format!(
            "--device-key does not match --device-cert `{name}`; give the key the certificate was issued for"
        )),
        private_key::KeyMatch::CannotTell(why) => blocking.push(format!(
            "cannot tell whether --device-key matches --device-cert `{name}`: {why}"
        )),
    }
    match x509::validity(&dc.cert, now, crate::checks::EXPIRY_WARNING_DAYS) {
        Validity::Expired { .. } => blocking.push(format!(
            "--device-cert `{name}` expired on {}",
            crate::time::format_date(dc.cert.not_after)
        )),
        Validity::NotYetValid => blocking.push(format!("--device-cert `{name}` is not valid yet")),
        _ => {}
    }
}

/// Every folder the files need, each with its mode, parents first.
fn folders(files: &[FileSpec]) -> Vec<DirSpec> {
    let mut dirs: Vec<DirSpec> = Vec::new();
    for file in files {
        let mut path = String::new();
        let parts: Vec<&str> = file.path.split('/').collect();
        for part in &parts[..parts.len() - 1] {
            if !path.is_empty() {
                path.push('/');
            }
            path.push_str(part);
            if !dirs.iter().any(|d| d.root == file.root && d.path == path) {
                let mode = if file.root == Root::Device && (path == SOTA_DIR || path == IMPORT_DIR)
                {
                    MODE_PRIVATE_DIR
                } else {
                    MODE_DIR
                };
                dirs.push(DirSpec {
                    root: file.root,
                    path: path.clone(),
                    mode,
                });
            }
        }
    }
    dirs.sort_by(|a, b| (a.root, a.path.as_bytes()).cmp(&(b.root, b.path.as_bytes())));
    dirs
}
