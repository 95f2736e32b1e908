//! `sota-stage device-certs`: one client certificate and key per device,
//! signed by the fleet CA, in one process for the whole batch and on all
//! cores, written all or nothing as one bundle per device plus
//! `devices.json` and `devices.csv` (docs/device-certs.md).
//!
//! Order of a run: read and check the fleet CA (its key must match, it must
//! be a CA allowed to sign certificates, valid now); check every id (the
//! command line gathered them); refuse existing bundles unless forced; read
//! the fleet-wide files from a credentials archive when asked; issue the
//! certificates in parallel; plan; apply in one transaction.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::commands::shared::{
    self, file_label, flag_file, read_checked, read_templates, refuse_outputs_over_inputs, Named,
    Outcome,
};
use crate::crypto::csr::{self, Request};
use crate::crypto::error::CryptoError;
use crate::crypto::issue::{check_device_id, FleetCa, Issued, KeyType, SubjectExtra};
use crate::crypto::pkcs11::{Pkcs11Uri, TokenError, TokenKey};
use crate::crypto::private_key;
use crate::crypto::x509::KeyAlgorithm;
use crate::error::{Error, Result, EXIT_OK};
use crate::escape::escape;
use crate::files::{self, Kind};
use crate::intake::catalogue::Side;
use crate::plan::bundles::{self, DeviceBundle, FleetFiles, Format, DEVICES_CSV, DEVICES_JSON};
use crate::plan::methods::{Method, Source};
use crate::plan::options::{FragmentOptions, Hsm, ReportConfig, StageOptions, UnknownPolicy};
use crate::plan::staging;
use crate::report::counted;
use crate::secret::Secret;
use crate::write::apply::{self, Roots};

/// The most devices one run issues for: every bundle is held in memory
/// until the one transaction writes them.
pub const MAX_DEVICES: usize = 100_000;

const SECONDS_PER_DAY: i64 = 86_400;

/// Everything one `device-certs` run needs.
#[derive(Debug)]
pub struct Config {
    pub fleet_ca: PathBuf,
    pub fleet_ca_key: CaKeySource,
    /// The CA key's password, when one was given (a key file only).
    pub fleet_ca_key_password: Option<Secret<String>>,
    /// In the order given; checked here. Empty with `csr`.
    pub ids: Vec<String>,
    /// Sign these certificate requests (a file, or a folder of them)
    /// instead of making keys: the ids are their CNs.
    pub csr: Option<PathBuf>,
    pub subject: SubjectExtra,
    pub key_type: KeyType,
    pub days: u32,
    pub out: PathBuf,
    pub format: Format,
    /// Put its `gateway.url` and `root.crt` into each bundle.
    pub credentials: Option<PathBuf>,
    /// Opens the archive's p12 when the server CA is only in it.
    pub p12_password: Secret<String>,
    pub force: bool,
    pub lock_timeout: Duration,
    /// `SOURCE_DATE_EPOCH`: file and tar times.
    pub epoch: i64,
    /// Now: the certificates' notBefore.
    pub now: i64,
    /// The other files the command line read (the id list, password
    /// files), named by their flags: no output may be one.
    pub inputs: Vec<Named>,
}

/// Where the fleet CA key is.
#[derive(Debug)]
pub enum CaKeySource {
    /// A key file (PEM); only read.
    File(PathBuf),
    /// A private key in a token: every signature is made by the token.
    Token(Box<TokenSource>),
}

/// A key in a token, as the command line gave it.
#[derive(Debug)]
pub struct TokenSource {
    pub uri: Pkcs11Uri,
    /// The PKCS#11 module, an absolute path (checked).
    pub module: PathBuf,
    pub pin: Secret<String>,
    /// Where the PIN came from, a flag or a variable, for the message
    /// when the token refuses it.
    pub pin_from: String,
}

/// `waiting` is told, once, when the run waits for another one that holds
/// its roots.
pub fn run(config: &Config, waiting: fn(&str)) -> Result<Outcome> {
    let ca = read_ca(config)?;
    let requests = match &config.csr {
        Some(path) => read_requests(path)?,
        None => Vec::new(),
    };
    let ids: Vec<String> = if config.csr.is_some() {
        requests.iter().map(|r| r.common_name.clone()).collect()
    } else {
        config.ids.clone()
    };
    check_ids(&ids)?;
    check_subjects(&ca, &ids, config)?;
    check_existing(config, &ids)?;
    let fleet = match &config.credentials {
        Some(path) => fleet_files(path, config)?,
        None => Vec::new(),
    };

    let mut stderr = String::new();
    let not_before = config.now;
    let wanted = config.now + i64::from(config.days) * SECONDS_PER_DAY;
    let not_after = wanted.min(ca.info().not_after);
    if not_after < wanted {
        stderr.push_str(&format!(
            "warning: the fleet CA expires on {}: the certificates end then, {} from now instead of {}\n",
            crate::time::format_date(not_after),
            counted(
                u64::try_from((not_after - not_before) / SECONDS_PER_DAY).unwrap_or(0),
                "day",
                "days"
            ),
            config.days
        ));
    }

    let keys: Vec<Option<&[u8]>> = if config.csr.is_some() {
        requests
            .iter()
            .map(|r| Some(r.spki_der.as_slice()))
            .collect()
    } else {
        vec![None; ids.len()]
    };
    let key_types: Vec<String> = if config.csr.is_some() {
        requests.iter().map(|r| key_type_name(&r.key)).collect()
    } else {
        vec![config.key_type.as_str().to_string(); ids.len()]
    };
    let issued = issue_all(&ca, config, &ids, &keys, not_before, not_after)?;
    let bundles: Vec<DeviceBundle<'_>> = ids
        .iter()
        .zip(&issued)
        .zip(&key_types)
        .map(|((id, i), key_type)| DeviceBundle {
            id,
            cert: &i.cert,
            cert_pem: &i.cert_pem,
            key_pem: i.key_pem.as_ref(),
            key_type,
            key_source: if i.key_pem.is_some() { "minted" } else { "csr" },
        })
        .collect();
    let plan = bundles::plan(ca.info(), &bundles, &fleet, config.format, config.epoch)?;
    let write = apply::Options {
        epoch: config.epoch,
        force: config.force,
        sync: false,
        lock_timeout: config.lock_timeout,
        waiting: Some(waiting),
    };
    // The plan is on the host side (every folder the tool's own); the
    // device root is the same folder, so the one lock covers both.
    let roots = Roots {
        device: &config.out,
        host: Some(&config.out),
    };
    check_outputs(config, &plan)?;
    let applied = apply::apply(&plan, &roots, None, &write)?;
    let kind = if config.csr.is_some() {
        "from certificate requests".to_string()
    } else {
        config.key_type.as_str().to_string()
    };
    stderr.push_str(&format!(
        "issued {} ({kind}, signed by `{}`) into `{}`: {} written; see {DEVICES_JSON} and {DEVICES_CSV}\n",
        counted(issued.len() as u64, "device certificate", "device certificates"),
        escape(&ca.info().subject),
        escape(&config.out.display().to_string()),
        counted(applied.written as u64, "file", "files"),
    ));
    Ok(Outcome {
        stdout: String::new(),
        stderr,
        exit: EXIT_OK,
    })
}

/// No bundle or record is written over a file the run reads: the fleet
/// CA, its key, the archive, the id list, a password file.
fn check_outputs(config: &Config, plan: &crate::plan::files::Plan) -> Result<()> {
    let mut inputs: Vec<Named> = vec![(
        flag_file("--fleet-ca", &config.fleet_ca),
        config.fleet_ca.clone(),
    )];
    if let CaKeySource::File(key) = &config.fleet_ca_key {
        inputs.push((flag_file("--fleet-ca-key", key), key.clone()));
    }
    inputs.extend(
        config
            .credentials
            .iter()
            .map(|c| (flag_file("--credentials", c), c.clone())),
    );
    inputs.extend(
        config
            .csr
            .iter()
            .map(|c| (flag_file("--csr", c), c.clone())),
    );
    inputs.extend(config.inputs.iter().cloned());
    let outputs: Vec<Named> = plan
        .files
        .iter()
        .map(|f| {
            let path = config.out.join(&f.path);
            (flag_file("--out's", &path), path)
        })
        .collect();
    refuse_outputs_over_inputs(&outputs, &inputs)
}

/// Reads the CA certificate and key and checks them together.
fn read_ca(config: &Config) -> Result<FleetCa> {
    let cert_pem = files::read(&config.fleet_ca, Kind::Pem)?;
    let key_file = match &config.fleet_ca_key {
        CaKeySource::File(path) => path,
        CaKeySource::Token(token) => return read_token_ca(config, &cert_pem, token),
    };
    let key_pem = Secret::new(files::read(key_file, Kind::Pem)?);
    let key = private_key::parse_private_key_pem_with_password(
        key_pem.expose(),
        config.fleet_ca_key_password.as_ref(),
    )
    .map_err(|e| {
        let file = escape(&key_file.display().to_string()).into_owned();
        match e {
            CryptoError::EncryptedKey => Error::Invalid(format!(
                "the fleet CA key `{file}`: the key is encrypted; give its password with --fleet-ca-key-password-file or SOTA_FLEET_CA_KEY_PASSWORD"
            )),
            e => Error::Invalid(format!("the fleet CA key `{file}`: {e}")),
        }
    })?;
    FleetCa::new(&cert_pem, &key, config.now).map_err(|e| {
        Error::Invalid(format!(
            "the fleet CA `{}`: {e}",
            escape(&config.fleet_ca.display().to_string())
        ))
    })
}

/// Opens the token key and checks it against the CA certificate: the
/// token's errors named by the URI (never the PIN) and, for a refused PIN,
/// where it came from.
fn read_token_ca(config: &Config, cert_pem: &[u8], token: &TokenSource) -> Result<FleetCa> {
    let key = TokenKey::open(&token.module, &token.uri, &token.pin).map_err(|e| match e {
        TokenError::Load { .. } | TokenError::Module { .. } => {
            Error::Invalid(format!("--pkcs11-module: {e}"))
        }
        TokenError::WrongPin(uri) => Error::Invalid(format!(
            "the fleet CA key `{uri}`: the token refused the PIN from {}; check it (the PIN is not shown)",
            token.pin_from
        )),
        TokenError::NoToken(_) => Error::Invalid(format!(
            "the fleet CA key: {e}; `pkcs11-tool --module {} --list-token-slots` lists the tokens",
            escape(&token.module.display().to_string())
        )),
        TokenError::NoObject(_) => Error::Invalid(format!(
            "the fleet CA key: {e}; `pkcs11-tool --module {} --login --list-objects --type privkey` lists its keys",
            escape(&token.module.display().to_string())
        )),
        e => Error::Invalid(format!("the fleet CA key: {e}")),
    })?;
    let uri = key.uri().to_string();
    FleetCa::with_token(cert_pem, key, config.now).map_err(|e| {
        Error::Invalid(format!(
            "the fleet CA `{}` with the key `{uri}` in the token: {e}",
            escape(&config.fleet_ca.display().to_string())
        ))
    })
}

/// Every id well formed and given once; every problem at once.
fn check_ids(ids: &[String]) -> Result<()> {
    if ids.is_empty() {
        return Err(Error::Usage("no device ids were given".into()));
    }
    if ids.len() > MAX_DEVICES {
        return Err(Error::Invalid(format!(
            "{} device ids were given; one run issues at most {MAX_DEVICES}: split the list",
            ids.len()
        )));
    }
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for id in ids {
        if let Err(why) = check_device_id(id) {
            problems.push(format!("device id `{}`: {why}", escape(id)));
        } else if !seen.insert(id.as_str()) {
            problems.push(format!("device id `{id}` is given more than once"));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    let shown = problems.len().min(20);
    let more = if problems.len() > shown {
        format!("\n  ... and {} more", problems.len() - shown)
    } else {
        String::new()
    };
    Err(Error::Invalid(format!(
        "device ids are refused; nothing was written (ids are 1 to 64 characters of [A-Za-z0-9._-], not starting with `.`, each given once):\n  - {}{more}",
        problems[..shown].join("\n  - ")
    )))
}

/// An existing bundle or record is replaced only with force: a device's
/// key must not be swapped by accident.
fn check_existing(config: &Config, ids: &[String]) -> Result<()> {
    if config.force {
        return Ok(());
    }
    let mut taken = Vec::new();
    let names = ids
        .iter()
        .map(|id| config.format.bundle_path(id))
        .chain([DEVICES_JSON.to_string(), DEVICES_CSV.to_string()]);
    for name in names {
        let path = config.out.join(&name);
        match std::fs::symlink_metadata(&path) {
            Ok(_) => taken.push(name),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("look at", &path, e)),
        }
    }
    if taken.is_empty() {
        return Ok(());
    }
    let shown = taken.len().min(20);
    let more = if taken.len() > shown {
        format!("\n  ... and {} more", taken.len() - shown)
    } else {
        String::new()
    };
    Err(Error::Invalid(format!(
        "`{}` already holds bundles or a record of an earlier run; nothing was written (give another --out folder, or --force to replace them):\n  - {}{more}",
        escape(&config.out.display().to_string()),
        taken[..shown].join("\n  - ")
    )))
}

/// `gateway.url` and `root.crt` as `stage --method device-cred` makes
/// them from the archive, with its checks.
fn fleet_files(path: &Path, config: &Config) -> Result<FleetFiles> {
    let method = Method::DeviceCred;
    let opts = StageOptions {
        fragment: FragmentOptions {
            method,
            hardware_id: None,
            p12_password: config.p12_password.clone(),
            hsm: Hsm::default(),
            report_config: ReportConfig::Auto,
        },
        device_cert: None,
        root_pinning: false,
        unknown: UnknownPolicy::Drop,
        with_host: false,
        epoch: config.epoch,
        now: config.now,
    };
    let label = file_label(path);
    let (archive, findings) = read_checked(path, &opts.fragment.p12_password, false, config.now)?;
    let templates = read_templates(None)?;
    let plan = staging::plan(&label, &archive, &findings, &opts, &templates)
        .map_err(shared::with_flags)?;
    let wanted = [Source::DeviceUrl, Source::ServerCa]
        .into_iter()
        .filter_map(|s| method.path_of(s));
    let mut out = Vec::new();
    for want in wanted {
        let file = plan
            .files
            .iter()
            .find(|f| f.side == Side::Device && f.path == want)
            .ok_or_else(|| Error::Invalid(format!("{label}: gives no `{want}` for device-cred")))?;
        out.push((want, file.contents.expose().clone()));
    }
    Ok(out)
}

/// Issues every certificate, the ids cut into one chunk per core: a key
/// made for each, or the key of its request (`keys`, beside `ids`).
fn issue_all(
    ca: &FleetCa,
    config: &Config,
    ids: &[String],
    keys: &[Option<&[u8]>],
    not_before: i64,
    not_after: i64,
) -> Result<Vec<Issued>> {
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let chunk = ids.len().div_ceil(cores).max(1);
    let results: Vec<Result<Vec<Issued>>> = std::thread::scope(|scope| {
        let workers: Vec<_> = ids
            .chunks(chunk)
            .zip(keys.chunks(chunk))
            .map(|(ids, keys)| {
                scope.spawn(move || {
                    ids.iter()
                        .zip(keys)
                        .map(|(id, key)| {
                            match key {
                                Some(spki) => ca.issue_for_key(
                                    id,
                                    &config.subject,
                                    spki,
                                    not_before,
                                    not_after,
                                ),
                                None => ca.issue(
                                    id,
                                    &config.subject,
                                    config.key_type,
                                    not_before,
                                    not_after,
                                ),
                            }
                            .map_err(|e| Error::Invalid(format!("device `{id}`: {e}")))
                        })
                        .collect::<Result<Vec<Issued>>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join().unwrap_or_else(|_| {
                    Err(Error::Invalid(
                        "a certificate worker failed; nothing was written".into(),
                    ))
                })
            })
            .collect()
    });
    let mut issued = Vec::with_capacity(config.ids.len());
    for chunk in results {
        issued.extend(chunk?);
    }
    Ok(issued)
}

/// The requests of `--csr`: one file, or every file of a folder (not its
/// subfolders, not names starting with `.`), sorted by name; each checked
/// (its signature, its key, one CN that is a valid id); ids given once.
/// Every problem at once, each naming its file.
fn read_requests(path: &Path) -> Result<Vec<Request>> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io("look at", path, e))?;
    let files = if meta.is_dir() {
        let mut files = Vec::new();
        let entries = std::fs::read_dir(path).map_err(|e| Error::io("list", path, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("list", path, e))?;
            let name = entry.file_name();
            if name.as_encoded_bytes().first() == Some(&b'.') {
                continue;
            }
            let file = entry.path();
            let is_dir = std::fs::metadata(&file)
                .map_err(|e| Error::io("look at", &file, e))?
                .is_dir();
            if is_dir {
                continue;
            }
            if files.len() >= MAX_DEVICES {
                return Err(Error::Invalid(format!(
                    "--csr `{}` holds more than {MAX_DEVICES} files; one run issues at most {MAX_DEVICES}: split the folder",
                    escape(&path.display().to_string())
                )));
            }
            files.push(file);
        }
        files.sort();
        if files.is_empty() {
            return Err(Error::Invalid(format!(
                "--csr `{}` holds no request files; put the devices' requests (PEM or DER) into it",
                escape(&path.display().to_string())
            )));
        }
        files
    } else {
        vec![path.to_path_buf()]
    };
    let mut problems = Vec::new();
    let mut requests: Vec<Request> = Vec::with_capacity(files.len());
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    for file in files {
        let shown = escape(&file.display().to_string()).into_owned();
        let bytes = files::read(&file, Kind::Csr)?;
        let request = match csr::parse(&bytes) {
            Ok(request) => request,
            Err(e) => {
                problems.push(format!("`{shown}`: {e}"));
                continue;
            }
        };
        if let Err(why) = check_device_id(&request.common_name) {
            problems.push(format!(
                "`{shown}`: its CN `{}` is no device id: {why}; ids are 1 to 64 characters of [A-Za-z0-9._-], not starting with `.`",
                escape(&request.common_name)
            ));
            continue;
        }
        if let Some(first) = seen.get(&request.common_name) {
            problems.push(format!(
                "`{shown}`: its CN `{}` is the id of `{}` too; each device is signed once",
                request.common_name,
                escape(&first.display().to_string())
            ));
            continue;
        }
        seen.insert(request.common_name.clone(), file.clone());
        requests.push(request);
    }
    if problems.is_empty() {
        return Ok(requests);
    }
    let shown = problems.len().min(20);
    let more = if problems.len() > shown {
        format!("\n  ... and {} more", problems.len() - shown)
    } else {
        String::new()
    };
    Err(Error::Invalid(format!(
        "certificate requests are refused; nothing was written:\n  - {}{more}",
        problems[..shown].join("\n  - ")
    )))
}

/// As the record names a request's key type.
fn key_type_name(key: &KeyAlgorithm) -> String {
    match key {
        KeyAlgorithm::EcP256 => KeyType::EcP256.as_str().to_string(),
        KeyAlgorithm::EcP384 => KeyType::EcP384.as_str().to_string(),
        KeyAlgorithm::Rsa { bits } => format!("rsa-{bits}"),
        other => other.to_string(),
    }
}

/// Every CA's name constraints permit every device's subject: checked for
/// all before any certificate is made.
fn check_subjects(ca: &FleetCa, ids: &[String], config: &Config) -> Result<()> {
    for id in ids {
        ca.check_subject(id, &config.subject).map_err(|e| {
            Error::Invalid(format!(
                "the fleet CA `{}`: {e}",
                escape(&config.fleet_ca.display().to_string())
            ))
        })?;
    }
    Ok(())
}
