//! The inputs read and checked before anything is written: the fleet CA
//! (a key file or a token), the ids, the requests of `--csr`, the
//! archive's fleet-wide files, the CAs' limits on each subject; and no
//! bundle or record written over a file the run reads.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use super::config::{CaKeySource, Config, TokenSource, MAX_DEVICES};
use crate::commands::shared::{
    self, file_label, flag_file, read_checked, read_templates, refuse_outputs_over_inputs, Named,
};
use crate::crypto::csr::{self, Request};
use crate::crypto::error::CryptoError;
use crate::crypto::issue::{check_device_id, FleetCa};
use crate::crypto::pkcs11::{TokenError, TokenKey};
use crate::crypto::private_key;
use crate::digest::{self, sha256_hex};
use crate::error::{Error, Result};
use crate::escape::escape;
use crate::files::{self, Kind};
use crate::intake::catalogue::Side;
use crate::plan::bundles::{self, FleetFiles, DEVICES_CSV, DEVICES_JSON};
use crate::plan::methods::{Method, Source};
use crate::plan::options::{FragmentOptions, Hsm, ReportConfig, StageOptions, UnknownPolicy};
use crate::plan::staging;
use crate::secret::Secret;
use sha2::{Digest, Sha256};

/// The requests of `--csr`, read and checked, in the order of their
/// files, with the digest of their files for the journal's header.
#[derive(Debug)]
pub(super) struct Requests {
    pub(super) requests: Vec<Request>,
    pub(super) digest: String,
}

/// Reads the CA certificate and key and checks them together; with where
/// the key is, as the journal's header records it (`file:` and the key
/// file's SHA-256, or `token:` and the URI: never a PIN).
pub(super) fn read_ca(config: &Config) -> Result<(FleetCa, String)> {
    let cert_pem = files::read(&config.fleet_ca, Kind::Pem)?;
    let key_file = match &config.fleet_ca_key {
        CaKeySource::File(path) => path,
        CaKeySource::Token(token) => {
            let ca = read_token_ca(config, &cert_pem, token)?;
            return Ok((ca, format!("token:{}", token.uri)));
        }
    };
    let key_pem = Secret::new(files::read(key_file, Kind::Pem)?);
    let key_digest = format!("file:{}", sha256_hex(key_pem.expose()));
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
    let ca = FleetCa::new(&cert_pem, &key, config.now).map_err(|e| {
        Error::Invalid(format!(
            "the fleet CA `{}`: {e}",
            escape(&config.fleet_ca.display().to_string())
        ))
    })?;
    Ok((ca, key_digest))
}

/// Opens the token key and checks it against the CA certificate: the
/// token's errors named by the URI (never the PIN) and, for a refused PIN,
/// where it came from.
pub(super) fn read_token_ca(
    config: &Config,
    cert_pem: &[u8],
    token: &TokenSource,
) -> Result<FleetCa> {
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

/// Every id well formed, given once, and not a name of the record; every
/// problem at once.
pub(super) fn check_ids(ids: &[String]) -> Result<()> {
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
    let mut seen = HashSet::new();
    for id in ids {
        if let Err(why) = check_device_id(id) {
            problems.push(format!("device id `{}`: {why}", escape(id)));
        } else if bundles::is_reserved(id) {
            problems.push(format!(
                "device id `{id}`: it is the name of the record ({DEVICES_JSON}, {DEVICES_CSV}) in the output folder"
            ));
        } else if !seen.insert(id.as_str()) {
            problems.push(format!("device id `{id}` is given more than once"));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(Error::Invalid(format!(
        "device ids are refused; nothing was written (ids are 1 to 64 characters of [A-Za-z0-9._-], not starting with `.`, each given once, not {DEVICES_JSON} or {DEVICES_CSV}):\n{}",
        listed(&problems)
    )))
}

/// `gateway.url` and `root.crt` as `stage --method device-cred` makes
/// them from the archive, with its checks.
pub(super) fn fleet_files(path: &Path, config: &Config) -> Result<FleetFiles> {
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

/// The requests of `--csr`: one file, or every file of a folder (not its
/// subfolders, not names starting with `.`), sorted by name; each checked
/// (its signature, its key, one CN that is a valid id and not a name of the
/// record); ids given once. Every problem at once, each naming its file.
/// Only the parsed requests are kept, not the files, and a digest of the
/// files (each one's name and SHA-256) for the journal's header.
pub(super) fn read_requests(path: &Path) -> Result<Requests> {
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
    let mut digest = Sha256::new();
    for file in files {
        let shown = escape(&file.display().to_string()).into_owned();
        let bytes = files::read(&file, Kind::Csr)?;
        digest.update(file.file_name().unwrap_or_default().as_encoded_bytes());
        digest.update([0]);
        digest.update(sha256_hex(&bytes).as_bytes());
        digest.update(b"\n");
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
        if bundles::is_reserved(&request.common_name) {
            problems.push(format!(
                "`{shown}`: its CN `{}` is the name of the record ({DEVICES_JSON}, {DEVICES_CSV}) in the output folder; make the request with another device id",
                request.common_name
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
        return Ok(Requests {
            requests,
            digest: digest::hex(&digest.finalize()),
        });
    }
    Err(Error::Invalid(format!(
        "certificate requests are refused; nothing was written:\n{}",
        listed(&problems)
    )))
}

/// Every CA's name constraints permit every device's subject: checked for
/// all before any certificate is made.
pub(super) fn check_subjects(ca: &FleetCa, ids: &[String], config: &Config) -> Result<()> {
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

/// `items` as a refusal lists them: one `  - item` line each, the first
/// 20, then how many more.
pub(super) fn listed(items: &[String]) -> String {
    let shown = items.len().min(20);
    let mut out = format!(
        "  - {}",
        items.get(..shown).unwrap_or_default().join("\n  - ")
    );
    if items.len() > shown {
        out.push_str(&format!("\n  ... and {} more", items.len() - shown));
    }
    out
}

/// No bundle or record is written over a file the run reads: the fleet
/// CA, its key, the archive, the id list, a password file.
pub(super) fn check_outputs(config: &Config, plan: &crate::plan::files::Plan) -> Result<()> {
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
        .map(|f| f.path.as_str())
        .chain([DEVICES_JSON, DEVICES_CSV])
        .map(|f| {
            let path = config.out.join(f);
            (flag_file("--out's", &path), path)
        })
        .collect();
    refuse_outputs_over_inputs(&outputs, &inputs)
}
