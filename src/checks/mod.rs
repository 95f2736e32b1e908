//! Content checks: every entry of an archive that passed intake, judged
//! against the catalogue (design.md section 3). Pure: bytes in, findings out.
//! This file judges each entry (p12, PEM, Uptane roots, garage-sign keys,
//! certificate validity); [`url`] the URL files and values; [`treehub`]
//! `treehub.json`.
//!
//! A check never puts a secret value in a message or a detail: entries are
//! named, certificates are described by subject, algorithm and dates, keys
//! by type.

pub mod treehub;
pub mod url;

use serde::Serialize;

use crate::crypto::garage_keys;
use crate::crypto::pkcs12::{self, P12Error, P12};
use crate::crypto::x509::{self, CertInfo, Validity};
use crate::intake::archive::{Archive, Entry};
use crate::intake::catalogue::{self, Content, Side};
use crate::plan::methods::{Method, Offers};
use crate::report::{counted, has_errors, Problem};
use crate::secret::Secret;

/// Days before expiry at which a certificate earns a warning.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// What the checks need besides the archive.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub p12_password: &'a Secret<String>,
    /// Accept a plain-http device URL.
    pub allow_http: bool,
    /// The time certificates are judged at (unix seconds).
    pub now: i64,
    /// How the user fixes what the checks find, worded by the command line.
    pub hints: &'a Hints,
}

/// The command line's words for the fixes the checks suggest: the core
/// names no flag.
#[derive(Debug, Clone, Copy)]
pub struct Hints {
    /// How to give the p12 password; ends the wrong-password message.
    pub p12_password: &'static str,
    /// How to say what to do with unknown entries.
    pub unknown: &'static str,
    /// How to allow a plain-http device URL.
    pub allow_http: &'static str,
}

/// The role an entry is reported with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryRole {
    Device,
    Host,
    Unknown,
    Directory,
}

impl EntryRole {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryRole::Device => "device",
            EntryRole::Host => "host",
            EntryRole::Unknown => "unknown",
            EntryRole::Directory => "directory",
        }
    }
}

/// A fact about an entry that is safe to show (never a secret value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Detail {
    pub label: &'static str,
    pub value: String,
}

/// The verdict on one entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntryReport {
    pub name: String,
    pub role: EntryRole,
    /// Unknown entries count as secret: nobody can say they are not.
    pub secret: bool,
    pub size: u64,
    pub sha256: Option<String>,
    pub purpose: Option<&'static str>,
    pub readers: Vec<&'static str>,
    pub details: Vec<Detail>,
    pub problems: Vec<Problem>,
}

/// Everything the checks found; `stage` builds on it.
#[derive(Debug)]
pub struct Findings {
    pub entries: Vec<EntryReport>,
    /// Problems of the archive as a whole.
    pub problems: Vec<Problem>,
    pub offers: Offers,
    pub methods: Vec<Method>,
    /// The device URL, when valid, as the device gets it: without the
    /// `/`s that ended it in the archive.
    pub device_url: Option<url::Url>,
    /// `autoprov.url` ended with `/`: the staged copies of it are
    /// `device_url`, not the entry's bytes.
    pub device_url_rewritten: bool,
    /// The shared provisioning bundle, when it opened.
    pub p12: Option<P12>,
    /// The server CA for `root.crt`: `server_ca.pem`, else the p12's chain.
    pub server_ca: Vec<CertInfo>,
}

impl Findings {
    /// No errors anywhere.
    pub fn ok(&self) -> bool {
        !has_errors(&self.problems) && self.entries.iter().all(|e| !has_errors(&e.problems))
    }

    pub fn error_count(&self) -> usize {
        self.all_problems().filter(|p| p.is_error()).count()
    }

    pub fn warning_count(&self) -> usize {
        self.all_problems().filter(|p| !p.is_error()).count()
    }

    fn all_problems(&self) -> impl Iterator<Item = &Problem> {
        self.problems
            .iter()
            .chain(self.entries.iter().flat_map(|e| e.problems.iter()))
    }
}

/// Checks every entry of `archive`.
pub fn check_archive(archive: &Archive, ctx: &Context<'_>) -> Findings {
    let mut findings = Findings {
        entries: Vec::new(),
        problems: Vec::new(),
        offers: Offers::default(),
        methods: Vec::new(),
        device_url: None,
        device_url_rewritten: false,
        p12: None,
        server_ca: Vec::new(),
    };
    let has_client_auth = archive.entry("client_auth.p12").is_some();
    let mut pem_ca: Option<Vec<CertInfo>> = None;
    let mut targets_pub = None;
    let mut targets_sec = None;

    for entry in &archive.entries {
        let Some(known) = catalogue::lookup(&entry.name) else {
            findings.entries.push(unknown_entry(entry, ctx));
            continue;
        };
        let mut report = EntryReport {
            name: entry.name.clone(),
            role: match known.role {
                Side::Device => EntryRole::Device,
                Side::Host => EntryRole::Host,
            },
            secret: known.secret,
            size: entry.data.len() as u64,
            sha256: Some(entry.sha256.clone()),
            purpose: Some(known.purpose),
            readers: known.readers.to_vec(),
            details: Vec::new(),
            problems: Vec::new(),
        };
        let out = &mut report;
        match known.content {
            Content::DeviceUrl => {
                let (url, rewritten) = check_device_url(entry, ctx, out);
                findings.device_url = url;
                findings.device_url_rewritten = rewritten;
            }
            Content::HostUrl { may_be_empty } => check_host_url(entry, may_be_empty, out),
            Content::ProvisioningP12 => findings.p12 = check_provisioning_p12(entry, ctx, out),
            Content::HostP12 => check_host_p12(entry, ctx, out),
            Content::Treehub => {
                let t = treehub::check(&entry.data, has_client_auth);
                if let Some(auth) = t.auth {
                    detail(out, "auth", auth.describe());
                }
                if let Some(server) = t.server {
                    detail(out, "treehub", server);
                }
                out.problems.extend(t.problems);
            }
            Content::RootMetadata => check_root_metadata(entry, ctx.now, out),
            Content::TargetsPublicKey => match garage_keys::parse_public(&entry.data) {
                Ok(key) => {
                    detail(out, "key", key.to_string());
                    targets_pub = Some(key);
                }
                Err(e) => out.problems.push(Problem::error(format!(
                    "is not a garage-sign public key: {e}"
                ))),
            },
            Content::TargetsPrivateKey => match garage_keys::parse_private(&entry.data) {
                Ok(key) => {
                    detail(out, "key", key.description());
                    targets_sec = Some(key);
                }
                Err(e) => out.problems.push(Problem::error(format!(
                    "is not a garage-sign private key: {e}"
                ))),
            },
            Content::PemCertificates => pem_ca = check_pem_certificates(entry, ctx, out),
            Content::ProvisionJson => {
                if crate::json::from_slice(&entry.data)
                    .map(|v| !v.is_object())
                    .unwrap_or(true)
                {
                    out.problems.push(Problem::error("is not a JSON object"));
                }
            }
        }
        findings.entries.push(report);
    }

    match (&targets_pub, &targets_sec) {
        (Some(public), Some(private)) if !garage_keys::matches(public, private) => {
            if let Some(report) = findings
                .entries
                .iter_mut()
                .find(|e| e.name == "targets.sec")
            {
                report.problems.push(Problem::error(
                    "does not match targets.pub; garage-sign would sign with a key the image repository does not trust: download the credentials again",
                ));
            }
        }
        (None, Some(_)) if archive.entry("targets.pub").is_none() => {
            findings.problems.push(Problem::warning(
                "targets.sec comes without targets.pub; garage-sign needs both for offline signing",
            ));
        }
        _ => {}
    }

    for dir in &archive.directories {
        findings.entries.push(EntryReport {
            name: dir.clone(),
            role: EntryRole::Directory,
            secret: false,
            size: 0,
            sha256: None,
            purpose: None,
            readers: Vec::new(),
            details: vec![Detail {
                label: "note",
                value: "directory entry, ignored".into(),
            }],
            problems: Vec::new(),
        });
    }

    for report in &mut findings.entries {
        for problem in &mut report.problems {
            problem.message = entry_message(&report.name, &problem.message);
        }
    }

    findings.server_ca = match pem_ca {
        Some(certs) => certs,
        None => findings
            .p12
            .as_ref()
            .map(|p| p.ca_chain.clone())
            .unwrap_or_default(),
    };
    findings.offers = Offers {
        device_url: findings.device_url.is_some(),
        usable_p12: findings.p12.is_some(),
        server_ca: !findings.server_ca.is_empty(),
    };
    findings.methods = findings.offers.supported();
    if findings.methods.is_empty()
        && (archive.entry("autoprov.url").is_some() || findings.p12.is_some())
    {
        let why: Vec<String> = Method::ALL
            .iter()
            .map(|m| {
                format!(
                    "{m} needs {}",
                    findings.offers.missing_for(*m).join(" and ")
                )
            })
            .collect();
        findings.problems.push(Problem::warning(format!(
            "the archive supports no provisioning method: {}",
            why.join("; ")
        )));
    }
    findings
}

/// Puts the entry's name in front of a message: "entry 'x' is empty", or
/// "entry 'x': `field` is missing" when the message names something else.
fn entry_message(name: &str, message: &str) -> String {
    if message.starts_with('`') || message.starts_with("the ") {
        format!("entry '{name}': {message}")
    } else {
        format!("entry '{name}' {message}")
    }
}

fn detail(report: &mut EntryReport, label: &'static str, value: impl Into<String>) {
    report.details.push(Detail {
        label,
        value: value.into(),
    });
}

fn unknown_entry(entry: &Entry, ctx: &Context<'_>) -> EntryReport {
    EntryReport {
        name: entry.name.clone(),
        role: EntryRole::Unknown,
        secret: catalogue::is_secret(&entry.name),
        size: entry.data.len() as u64,
        sha256: Some(entry.sha256.clone()),
        purpose: None,
        readers: Vec::new(),
        details: Vec::new(),
        problems: vec![Problem::warning(format!(
            "is not a known credentials entry and no tool reads it; `stage` refuses it unless told {}",
            ctx.hints.unknown
        ))],
    }
}

/// The device URL as the device gets it, when usable, and whether that
/// differs from the entry (its final `/`s left out).
fn check_device_url(
    entry: &Entry,
    ctx: &Context<'_>,
    out: &mut EntryReport,
) -> (Option<url::Url>, bool) {
    let url = match url::parse_file(&entry.data) {
        Ok(url) => url,
        Err(why) => {
            out.problems.push(Problem::error(format!(
                "is not a usable URL: {why}; the device cannot find its provisioning server"
            )));
            return (None, false);
        }
    };
    detail(out, "url", url.text.clone());
    let mut usable = true;
    if url.scheme == url::Scheme::Http && !ctx.allow_http {
        out.problems.push(Problem::error(format!(
            "is plain http: devices would provision over an unencrypted connection; use https, or {} for a local test server",
            ctx.hints.allow_http
        )));
        usable = false;
    }
    if url.rest.contains(['?', '#']) {
        out.problems.push(Problem::error(
            "has a query or fragment, but aktualizr appends paths such as `/director` to it; use the bare server URL",
        ));
        usable = false;
    } else if let Some(bare) = url.without_final_slashes() {
        detail(
            out,
            "note",
            format!(
                "ends with `/`, which aktualizr would turn into `//devices` and `//director` (a server that does not merge slashes answers 404); stage writes it as `{}`",
                bare.text
            ),
        );
        return (usable.then_some(bare), usable);
    }
    (usable.then_some(url), false)
}

fn check_host_url(entry: &Entry, may_be_empty: bool, out: &mut EntryReport) {
    let blank = entry.data.iter().all(|b| b" \t\r\n".contains(b));
    if blank && may_be_empty {
        out.problems.push(Problem::warning(
            "is empty; garage-sign cannot reach the image repository from it (real archives sometimes ship it empty)",
        ));
        return;
    }
    match url::parse_file(&entry.data) {
        Ok(url) => {
            if url.scheme == url::Scheme::Http {
                out.problems.push(Problem::warning(format!(
                    "`{}` is plain http: host tools talk to it unencrypted",
                    url.text
                )));
            }
            detail(out, "url", url.text);
        }
        Err(why) => out
            .problems
            .push(Problem::error(format!("is not a usable URL: {why}"))),
    }
}

fn describe_cert(cert: &CertInfo) -> String {
    let name = cert.common_name.as_deref().unwrap_or(&cert.subject);
    format!(
        "{name} ({}, expires {})",
        cert.key,
        x509::format_date(cert.not_after)
    )
}

/// Adds an error or warning for a certificate's validity at `now`.
fn judge_validity(cert: &CertInfo, what: &str, ctx: &Context<'_>, out: &mut EntryReport) {
    let named = format!("{what} `{}`", cert_name(cert));
    out.problems.extend(validity_problem(cert, &named, ctx.now));
}

/// A certificate's common name, else its subject.
pub fn cert_name(cert: &CertInfo) -> &str {
    cert.common_name.as_deref().unwrap_or(&cert.subject)
}

/// What is wrong with a certificate's validity at `now`, if anything: an
/// error when it is expired or not valid yet, a warning when it expires
/// within [`EXPIRY_WARNING_DAYS`]. `named` says which certificate ("the
/// server CA `x`").
pub fn validity_problem(cert: &CertInfo, named: &str, now: i64) -> Option<Problem> {
    let expires = x509::format_date(cert.not_after);
    match x509::validity(cert, now, EXPIRY_WARNING_DAYS) {
        Validity::Valid { .. } => None,
        Validity::ExpiresSoon { days_left } => Some(Problem::warning(format!(
            "{named} expires in {} ({expires}); ask your OTA server for new credentials",
            counted(u64::try_from(days_left).unwrap_or(0), "day", "days")
        ))),
        Validity::Expired { .. } => Some(Problem::error(format!(
            "{named} expired on {expires}; ask your OTA server for new credentials"
        ))),
        Validity::NotYetValid => Some(Problem::error(format!(
            "{named} is not valid before {}; check the build host's clock",
            x509::format_date(cert.not_before)
        ))),
    }
}

fn p12_error_message(e: &P12Error, password: &Secret<String>, hint: &str, entry: &str) -> String {
    let given = if password.expose().is_empty() {
        "the empty password"
    } else {
        "the given password"
    };
    match e {
        P12Error::WrongPassword => {
            format!("does not open with {given} (its MAC does not verify); {hint}")
        }
        other => format!(
            "cannot be used: {other}; `{entry}` must hold one client certificate and its key"
        ),
    }
}

fn check_provisioning_p12(entry: &Entry, ctx: &Context<'_>, out: &mut EntryReport) -> Option<P12> {
    let p12 = match pkcs12::open(&entry.data, ctx.p12_password) {
        Ok(p12) => p12,
        Err(e) => {
            out.problems.push(Problem::error(p12_error_message(
                &e,
                ctx.p12_password,
                ctx.hints.p12_password,
                &entry.name,
            )));
            return None;
        }
    };
    describe_p12(&p12, out);
    judge_validity(&p12.client, "the client certificate", ctx, out);
    for ca in &p12.ca_chain {
        judge_validity(ca, "the CA certificate", ctx, out);
    }
    if p12.ca_chain.is_empty() {
        out.problems.push(Problem::warning(
            "holds no CA certificate; device-credential provisioning needs `server_ca.pem` then",
        ));
    }
    if p12.mac.is_none() {
        out.problems.push(Problem::warning(
            "has no MAC, so its integrity cannot be checked",
        ));
    }
    if let Some(weak) = p12.weak_key_cipher {
        out.problems.push(Problem::warning(format!(
            "protects its private key with {weak}, which is weak; aktualizr opens it, \
             but re-export it with `openssl pkcs12 -export` (AES-256-CBC)"
        )));
    }
    Some(p12)
}

fn describe_p12(p12: &P12, out: &mut EntryReport) {
    detail(out, "client certificate", describe_cert(&p12.client));
    for ca in &p12.ca_chain {
        detail(out, "CA certificate", describe_cert(ca));
    }
    if p12.certificates_stored > p12.ca_chain.len() + 1 {
        detail(
            out,
            "note",
            format!(
                "{} certificates stored, {} after removing duplicates",
                p12.certificates_stored,
                p12.ca_chain.len() + 1
            ),
        );
    }
    if let Some(mac) = &p12.mac {
        detail(out, "MAC", mac.clone());
    }
    if !p12.encryption.is_empty() {
        detail(out, "encryption", p12.encryption.join(", "));
    }
}

/// `client_auth.p12` and `server.p12` belong to host tools, which open them
/// with the empty password; anything wrong is only a warning here.
fn check_host_p12(entry: &Entry, ctx: &Context<'_>, out: &mut EntryReport) {
    let empty = Secret::new(String::new());
    match pkcs12::open(&entry.data, &empty) {
        Ok(p12) => {
            describe_p12(&p12, out);
            judge_validity(&p12.client, "the client certificate", ctx, out);
        }
        Err(e) => out.problems.push(Problem::warning(format!(
            "was not checked: {}",
            p12_error_message(
                &e,
                &empty,
                "host tools open it with the empty password",
                &entry.name
            )
        ))),
    }
}

fn check_pem_certificates(
    entry: &Entry,
    ctx: &Context<'_>,
    out: &mut EntryReport,
) -> Option<Vec<CertInfo>> {
    match x509::parse_pem_certificates(&entry.data) {
        Ok(certs) => {
            for cert in &certs {
                detail(out, "certificate", describe_cert(cert));
                judge_validity(cert, "the certificate", ctx, out);
            }
            Some(certs)
        }
        Err(e) => {
            out.problems.push(Problem::error(format!(
                "is not a PEM certificate file: {e}"
            )));
            None
        }
    }
}

/// Uptane root metadata: `signed` with `_type` Root, `version`, `expires`
/// (an RFC 3339 time; in the past, a warning), and `signatures`. Signatures are not verified: there is nothing to
/// verify a first root against.
fn check_root_metadata(entry: &Entry, now: i64, out: &mut EntryReport) {
    let json: serde_json::Value = match crate::json::from_slice(&entry.data) {
        Ok(v) => v,
        Err(e) => {
            out.problems.push(Problem::error(e.to_string()));
            return;
        }
    };
    let Some(signed) = json.get("signed").filter(|s| s.is_object()) else {
        out.problems.push(Problem::error(
            "has no `signed` object; it is not Uptane root metadata",
        ));
        return;
    };
    match signed.get("_type").and_then(|t| t.as_str()) {
        Some(t) if t.eq_ignore_ascii_case("root") => {}
        Some(t) => out.problems.push(Problem::error(format!(
            "`signed._type` is `{t}`, not `Root`"
        ))),
        None => out
            .problems
            .push(Problem::error("`signed._type` is missing")),
    }
    match signed.get("version").and_then(|v| v.as_u64()) {
        Some(v) if v >= 1 => detail(out, "version", v.to_string()),
        _ => out.problems.push(Problem::error(
            "`signed.version` is missing or not a positive integer",
        )),
    }
    match signed.get("expires").and_then(|v| v.as_str()) {
        Some(e) => match crate::time::parse_rfc3339(e) {
            Ok(expires) => {
                detail(out, "expires", e.to_string());
                // Uptane root rotation may start from an expired root: the
                // client fetches the next versions whatever the first says.
                if expires <= now {
                    out.problems.push(Problem::warning(format!(
                        "`signed.expires` is {e}, in the past; aktualizr can still rotate from \
                         it to the newer roots of the repository, but check that it has them"
                    )));
                }
            }
            Err(why) => {
                // Quoted only when short: the value can be megabytes.
                let shown = if e.chars().count() <= 64 {
                    format!(" `{e}`")
                } else {
                    String::new()
                };
                out.problems.push(Problem::error(format!(
                    "`signed.expires`{shown} is not an RFC 3339 time ({why}); Uptane writes \
                     it like 2030-01-01T00:00:00Z"
                )));
            }
        },
        None => out.problems.push(Problem::error(
            "`signed.expires` is missing or not a string",
        )),
    }
    if !json.get("signatures").is_some_and(|s| s.is_array()) {
        out.problems
            .push(Problem::error("has no `signatures` list"));
    }
}
