//! What a `device-certs` run is given (`Config`, where the CA key is) and
//! its limits: devices per run and per batch.

use std::path::PathBuf;
use std::time::Duration;

use crate::commands::shared::Named;
use crate::crypto::issue::{KeyType, SubjectExtra};
use crate::crypto::pkcs11::Pkcs11Uri;
use crate::plan::bundles::Format;
use crate::secret::Secret;

/// The most devices one run issues for: the id list and the record's
/// index are held in memory (a few MiB at this size), nothing else grows.
pub const MAX_DEVICES: usize = 100_000;

/// Devices per batch with tar bundles: one file each.
pub const BATCH_TAR: usize = 1_000;
/// Devices per batch with folder bundles: each holds four folders open
/// while its batch is written, and 800 stay below the common limit of
/// 1,024 open files.
pub const BATCH_DIR: usize = 200;

pub(super) const SECONDS_PER_DAY: i64 = 86_400;

/// The record's `key_source` of a key made here, and of a request's.
pub(super) const KEY_SOURCE_MINTED: &str = "minted";
pub(super) const KEY_SOURCE_CSR: &str = "csr";

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
    /// fsync the journal, the bundles and the record.
    pub sync: bool,
    /// No progress and no summary line.
    pub quiet: bool,
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
