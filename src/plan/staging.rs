//! The split and the layout (design.md section 4): from a checked archive
//! and the options of one run, every file to stage with its bytes, on the
//! device side (the method's files from [`crate::plan::methods`], its
//! fragments, the pinned roots) and on the host side (what host tools
//! read, and a host-only zip). Pure: nothing is read or written here.

use crate::aktualizr::paths::SYSTEM_CONFIG_DIR;
use crate::checks::{self, EntryRole, Findings};
use crate::crypto::x509::{self, CertInfo};
use crate::crypto::{private_key, signature};
use crate::error::{Blocker, Error, Result};
use crate::intake::archive::Archive;
use crate::intake::catalogue::{self, Side};
use crate::plan::files::{is_within, leftover, FileSpec, Plan};
use crate::plan::fragments;
use crate::plan::methods::{Method, Source, HARDWARE_ID_TEMPLATE, PINNED_ROOTS};
use crate::plan::options::{DeviceCert, StageOptions, UnknownPolicy};
use crate::plan::render::Templates;
use crate::plan::zip;
use crate::report::Problem;

/// The archive entry with the device's server URL.
const DEVICE_URL_ENTRY: &str = "autoprov.url";

/// The host-only archive for garage-push and garage-sign.
pub const HOST_ZIP: &str = "credentials.zip";

/// The archive's shared provisioning bundle, which may hold the server CA.
const PROVISIONING_P12: &str = "autoprov_credentials.p12";

/// Plans the whole staging run. `label` names the archive in messages.
/// Refuses (`Error::Refused`, every reason at once) when the archive or the
/// options cannot serve the method.
pub fn plan(
    label: &str,
    archive: &Archive,
    findings: &Findings,
    opts: &StageOptions,
    templates: &Templates,
) -> Result<Plan> {
    let (blockers, warnings) = judge(archive, findings, opts);
    if !blockers.is_empty() {
        return Err(Error::Refused {
            label: label.to_string(),
            method: opts.fragment.method.to_string(),
            blockers,
        });
    }
    let mut files = device_files(archive, findings, opts, templates)?;
    if opts.with_host {
        files.extend(host_files(archive, opts)?);
    }
    let clashes = clashes(&files);
    if !clashes.is_empty() {
        return Err(Error::Refused {
            label: label.to_string(),
            method: opts.fragment.method.to_string(),
            blockers: clashes,
        });
    }
    let mut plan = Plan::new(
        opts.fragment.method,
        archive.sha256.clone(),
        files,
        warnings,
    );
    plan.retired = retired(&plan, opts.with_host);
    Ok(plan)
}

/// The longest name of one file or folder that Linux file systems take.
const NAME_MAX: usize = 255;
/// The most folders an entry may be nested in, and the longest path: far
/// beyond any credentials archive, far below what the kernel refuses.
const MAX_DEPTH: usize = 16;
const MAX_PATH: usize = 1024;

/// Paths that cannot all be written: two files of one name (an unknown
/// entry named like the host-only zip), a file where another needs a
/// folder (`treehub.json` and `treehub.json/x`, `extra` and
/// `extra/inner`), names no file system takes. Invalid input, found while
/// planning, each entry named.
fn clashes(files: &[FileSpec]) -> Vec<Blocker> {
    let mut out = Vec::new();
    let shown = |path: &str| {
        let mut s: String = path.chars().take(80).collect::<String>();
        if s.len() < path.len() {
            s.push_str("...");
        }
        format!("'{}'", s.escape_debug())
    };
    for (i, f) in files.iter().enumerate() {
        let parts: Vec<&str> = f.path.split('/').collect();
        if parts.iter().any(|p| p.len() > NAME_MAX) {
            out.push(Blocker::Problem(format!(
                "entry {} has a name longer than {NAME_MAX} bytes, which no file system takes; rename it or drop it",
                shown(&f.path)
            )));
            continue;
        }
        if parts.iter().any(|p| leftover(p).is_some()) {
            out.push(Blocker::Problem(format!(
                "entry {} has the name of a temporary file of sota-stage, which the next run would remove; rename it or drop it",
                shown(&f.path)
            )));
            continue;
        }
        if parts.len() > MAX_DEPTH || f.path.len() > MAX_PATH {
            out.push(Blocker::Problem(format!(
                "entry {} is {} folders deep and {} bytes long, more than the {MAX_DEPTH} folders and {MAX_PATH} bytes a credentials entry may have; drop it",
                shown(&f.path),
                parts.len() - 1,
                f.path.len()
            )));
            continue;
        }
        for g in &files[..i] {
            if g.side != f.side {
                continue;
            }
            let (a, b) = if g.path.len() <= f.path.len() {
                (&g.path, &f.path)
            } else {
                (&f.path, &g.path)
            };
            if a == b {
                out.push(Blocker::Problem(format!(
                    "entry {} has the name of another {} file of this run (such as the host-only archive); rename it or drop it",
                    shown(&f.path),
                    f.side.as_str()
                )));
            } else if is_within(b, a) {
                out.push(Blocker::Problem(format!(
                    "entry {} needs {} to be a folder, but that is a file of this run; rename one or drop it",
                    shown(b),
                    shown(a)
                )));
            }
        }
    }
    out
}

/// Every file the tool stages in some run (any method, any option) that
/// this plan does not: on the device the method table's files, every
/// fragment and the pinned roots; on the host the host tools' entries and
/// the host-only zip.
fn retired(plan: &Plan, with_host: bool) -> Vec<(Side, String)> {
    let mut all: Vec<(Side, String)> = Vec::new();
    for method in Method::ALL {
        let spec = method.spec();
        all.extend(
            spec.device_files
                .iter()
                .map(|f| (Side::Device, f.path.to_string())),
        );
        let name = spec.template.trim_end_matches(".hbs");
        all.push((Side::Device, format!("{SYSTEM_CONFIG_DIR}/{name}")));
    }
    let name = HARDWARE_ID_TEMPLATE.trim_end_matches(".hbs");
    all.push((Side::Device, format!("{SYSTEM_CONFIG_DIR}/{name}")));
    all.extend(
        PINNED_ROOTS
            .iter()
            .map(|(_, p)| (Side::Device, p.to_string())),
    );
    if with_host {
        all.extend(
            catalogue::CATALOGUE
                .iter()
                .filter(|k| k.on_host)
                .map(|k| (Side::Host, k.name.to_string())),
        );
        all.push((Side::Host, HOST_ZIP.to_string()));
    }
    all.sort();
    all.dedup();
    all.retain(|(side, path)| {
        !plan
            .files
            .iter()
            .any(|f| f.side == *side && &f.path == path)
    });
    all
}

/// The archive entries whose bytes (or a part of them) this run stages.
fn staged_entries(archive: &Archive, opts: &StageOptions) -> Vec<&'static str> {
    let spec = opts.fragment.method.spec();
    let mut used = vec![DEVICE_URL_ENTRY];
    for file in spec.device_files {
        match file.source {
            Source::ZipOf(names) => used.extend_from_slice(names),
            // From server_ca.pem when there is one; a CA taken from the p12
            // is judged on its own (see `judge`), not the p12's client
            // certificate.
            Source::ServerCa if archive.entry("server_ca.pem").is_some() => {
                used.push("server_ca.pem")
            }
            Source::ServerCa => {}
            Source::DeviceUrl | Source::DeviceCert | Source::DeviceKey => {}
        }
    }
    if opts.root_pinning {
        used.extend(PINNED_ROOTS.iter().map(|(entry, _)| *entry));
    }
    used
}

/// Everything that stops the run, and the warnings worth reading.
fn judge(
    archive: &Archive,
    findings: &Findings,
    opts: &StageOptions,
) -> (Vec<Blocker>, Vec<Problem>) {
    let method = opts.fragment.method;
    let mut blockers: Vec<Blocker> = findings
        .problems
        .iter()
        .filter(|p| p.is_error())
        .map(|p| Blocker::Problem(p.message.clone()))
        .collect();
    let missing = findings.offers.missing_for(method);
    if !missing.is_empty() {
        blockers.push(Blocker::Problem(format!(
            "the archive does not support {method}: it lacks {}",
            missing.join(" and ")
        )));
    }

    let used = staged_entries(archive, opts);
    // A server CA the method needs, with no `server_ca.pem`, can only come
    // from the p12: when the p12 did not open, why it did not (a wrong
    // password: its MAC) is the reason the CA is missing, so it blocks.
    let ca_only_in_p12 = !findings.offers.server_ca
        && findings.p12.is_none()
        && archive.entry("server_ca.pem").is_none()
        && method
            .spec()
            .device_files
            .iter()
            .any(|f| f.source == Source::ServerCa);
    let mut warnings = Vec::new();
    let mut unknown = Vec::new();
    for entry in &findings.entries {
        if entry.role == EntryRole::Unknown {
            unknown.push(entry.name.clone());
            continue;
        }
        let staged = used.contains(&entry.name.as_str())
            || (ca_only_in_p12 && entry.name == PROVISIONING_P12)
            || (opts.with_host && catalogue::lookup(&entry.name).is_some_and(|k| k.on_host));
        for p in &entry.problems {
            if !p.is_error() {
                warnings.push(p.clone());
            } else if staged {
                blockers.push(Blocker::Problem(p.message.clone()));
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
        blockers.push(Blocker::UnknownEntries(unknown));
    }
    // The CA that becomes root.crt is judged on its own: for device-cred it
    // may come from a p12 whose client certificate is irrelevant.
    if method
        .spec()
        .device_files
        .iter()
        .any(|f| f.source == Source::ServerCa)
    {
        for ca in &findings.server_ca {
            let named = format!("the server CA `{}`", checks::cert_name(ca));
            if let Some(p) = checks::validity_problem(ca, &named, opts.now) {
                if p.is_error() {
                    blockers.push(Blocker::Problem(p.message));
                }
            }
        }
    }
    if let Some(dc) = &opts.device_cert {
        judge_device_cert(dc, opts.now, &mut blockers, &mut warnings);
    }
    (blockers, warnings)
}

fn judge_device_cert(
    dc: &DeviceCert,
    now: i64,
    blockers: &mut Vec<Blocker>,
    warnings: &mut Vec<Problem>,
) {
    let name = checks::cert_name(&dc.cert);
    let cert = &dc.cert_file;
    let matched = dc
        .key
        .as_ref()
        .map(|(key, file)| (private_key::key_matches_cert(key, &dc.cert), file));
    match matched {
        None | Some((private_key::KeyMatch::Matches, _)) => {}
        Some((private_key::KeyMatch::DoesNotMatch, key)) => blockers.push(Blocker::Problem(format!(
            "the device key `{key}` does not match the device certificate `{cert}` (`{name}`); give the key the certificate was issued for"
        ))),
        Some((private_key::KeyMatch::CannotTell(why), key)) => blockers.push(Blocker::Problem(format!(
            "cannot tell whether the device key `{key}` matches the device certificate `{cert}` (`{name}`): {why}"
        ))),
    }
    let named = format!("the device certificate `{cert}` (`{name}`)");
    blockers.extend(
        identity_problems(&dc.cert)
            .into_iter()
            .map(|why| Blocker::Problem(format!("{named} {why}"))),
    );
    match checks::validity_problem(&dc.cert, &named, now) {
        Some(p) if p.is_error() => blockers.push(Blocker::Problem(p.message)),
        Some(p) => warnings.push(p),
        None => {}
    }
    blockers.extend(chain_problems(dc).into_iter().map(Blocker::Problem));
    for (i, ca) in dc.chain.iter().enumerate() {
        let named = format!(
            "certificate {} of `{cert}` (`{}`)",
            i + 2,
            checks::cert_name(ca)
        );
        match checks::validity_problem(ca, &named, now) {
            Some(p) if p.is_error() => blockers.push(Blocker::Problem(p.message)),
            Some(p) => warnings.push(p),
            None => {}
        }
    }
}

/// The most CA certificates after the device's own in `--device-cert`.
const MAX_DEVICE_CHAIN: usize = 8;

/// What is wrong with the CAs after the device's certificate in its file:
/// each must be a CA that issued (and signed) the one before it, and the
/// root stays out (the server has it; aktualizr sends what the file holds).
fn chain_problems(dc: &DeviceCert) -> Vec<String> {
    let file = &dc.cert_file;
    let fix = "give the device's certificate first, then the CA that issued it, then each CA above that, without the root";
    if dc.chain.len() > MAX_DEVICE_CHAIN {
        return vec![format!(
            "the device certificate file `{file}` holds {} certificates after the device's own, more than {MAX_DEVICE_CHAIN}; {fix}",
            dc.chain.len()
        )];
    }
    let mut out = Vec::new();
    let mut below = &dc.cert;
    for (i, ca) in dc.chain.iter().enumerate() {
        let named = format!(
            "certificate {} of `{file}` (`{}`)",
            i + 2,
            checks::cert_name(ca)
        );
        if !ca.is_ca {
            out.push(format!("{named} is not a CA certificate; {fix}"));
        } else if ca.is_self_issued() {
            out.push(format!(
                "{named} is a root (self-signed): leave it out of the file, the server has it; {fix}"
            ));
        } else if below.issuer != ca.subject {
            out.push(format!(
                "{named} did not issue certificate {} (issued by `{}`); {fix}",
                i + 1,
                below.issuer
            ));
        } else if let Err(e) = signature::certificate_signed_by(&below.der, &ca.spki_der) {
            out.push(format!(
                "{named} is named as the issuer of certificate {}, but its key did not sign it ({e}); {fix}",
                i + 1
            ));
        }
        below = ca;
    }
    out
}

/// Why a certificate cannot be a device's identity, each as the rest of a
/// sentence that names it: a CA certificate (basicConstraints CA:TRUE, or
/// keyUsage keyCertSign) would put a key that signs certificates, the
/// fleet CA's usually, into every image; an extendedKeyUsage without
/// clientAuth is refused by the server's TLS handshake (none at all is
/// fine, RFC 5280 4.2.1.12).
fn identity_problems(cert: &CertInfo) -> Vec<String> {
    let mut out = Vec::new();
    let signs = match (cert.is_ca, cert.key_cert_sign) {
        (true, true) => Some("basicConstraints CA:TRUE and keyUsage keyCertSign"),
        (true, false) => Some("basicConstraints CA:TRUE"),
        (false, true) => Some("keyUsage keyCertSign"),
        (false, false) => None,
    };
    if let Some(what) = signs {
        out.push(format!(
            "is a CA certificate ({what}): its key signs certificates and would be in every image; give the device's own client certificate and key, issued by the fleet CA (`sota-stage device-certs` makes them)"
        ));
    }
    if cert.client_auth == Some(false) {
        out.push(
            "has an extendedKeyUsage without clientAuth, so the server refuses it as a TLS client certificate; give a certificate issued with extendedKeyUsage clientAuth (or none)".to_string(),
        );
    }
    out
}

/// The method's device files from the table, its fragments, the pinned
/// roots.
fn device_files(
    archive: &Archive,
    findings: &Findings,
    opts: &StageOptions,
    templates: &Templates,
) -> Result<Vec<FileSpec>> {
    let entry_bytes = |name: &str| archive.entry(name).map(|e| e.data.clone());
    let mut files = Vec::new();
    for file in opts.fragment.method.spec().device_files {
        let bytes = match file.source {
            Source::ZipOf(names) => {
                let parts: Vec<(&str, Vec<u8>)> = names
                    .iter()
                    .map(|n| (*n, zipped_entry(archive, findings, n)))
                    .collect();
                let borrowed: Vec<(&str, &[u8])> =
                    parts.iter().map(|(n, b)| (*n, b.as_slice())).collect();
                zip::build(&borrowed, opts.epoch)?
            }
            Source::DeviceUrl => findings
                .device_url
                .as_ref()
                .map(|u| u.text.clone().into_bytes())
                .unwrap_or_default(),
            Source::ServerCa => pem(&findings.server_ca),
            Source::DeviceCert => match &opts.device_cert {
                Some(dc) => pem(&[std::slice::from_ref(&dc.cert), &dc.chain].concat()),
                None => continue,
            },
            Source::DeviceKey => match opts.device_cert.as_ref().and_then(|dc| dc.key.as_ref()) {
                Some((key, _)) => key.to_pem().expose().clone().into_bytes(),
                None => continue,
            },
        };
        files.push(FileSpec::new(Side::Device, file.path, bytes, file.secret));
    }
    for fragment in fragments::fragments(&opts.fragment, templates)? {
        files.push(FileSpec::new(
            Side::Device,
            format!("{SYSTEM_CONFIG_DIR}/{}", fragment.name),
            fragment.text.expose().clone().into_bytes(),
            fragment.secret,
        ));
    }
    if opts.root_pinning {
        for (entry, path) in PINNED_ROOTS {
            if let Some(bytes) = entry_bytes(entry) {
                files.push(FileSpec::new(Side::Device, path, bytes, false));
            }
        }
    }
    Ok(files)
}

/// The bytes of an archive entry as the device zip holds it: as it is,
/// except an `autoprov.url` that ended with `/`, which aktualizr reads
/// from the zip: that is the URL as the checks left it.
fn zipped_entry(archive: &Archive, findings: &Findings, name: &str) -> Vec<u8> {
    match &findings.device_url {
        Some(url) if name == DEVICE_URL_ENTRY && findings.device_url_rewritten => {
            url.text.clone().into_bytes()
        }
        _ => archive
            .entry(name)
            .map(|e| e.data.clone())
            .unwrap_or_default(),
    }
}

fn pem(certs: &[CertInfo]) -> Vec<u8> {
    x509::to_pem(certs).into_bytes()
}

/// Every entry a host tool reads, as a file and in one host-only zip.
fn host_files(archive: &Archive, opts: &StageOptions) -> Result<Vec<FileSpec>> {
    let mut files = Vec::new();
    let mut zipped = Vec::new();
    for entry in &archive.entries {
        let wanted = match catalogue::lookup(&entry.name) {
            Some(known) => known.on_host,
            None => opts.unknown == UnknownPolicy::Host,
        };
        if wanted {
            zipped.push((entry.name.as_str(), entry.data.as_slice()));
            files.push(FileSpec::new(
                Side::Host,
                entry.name.clone(),
                entry.data.clone(),
                catalogue::is_secret(&entry.name),
            ));
        }
    }
    if !zipped.is_empty() {
        let secret = files.iter().any(|f| f.secret);
        files.push(FileSpec::new(
            Side::Host,
            HOST_ZIP,
            zip::build(&zipped, opts.epoch)?,
            secret,
        ));
    }
    Ok(files)
}
