//! `sota-stage device-certs`: one client certificate and key per device,
//! signed by the fleet CA, in one process for the whole batch and on all
//! cores, written as one bundle per device plus `devices.json` and
//! `devices.csv` (docs/device-certs.md).
//!
//! Order of a run: read and check the fleet CA (its key, in a file or a
//! token, must match, it must be a CA allowed to sign certificates, valid
//! now); read and check every certificate request (`--csr`: the ids are
//! their CNs); check every id (the command line or the requests gave them;
//! the record's names are refused) and that the CAs' limits allow each
//! device's subject; refuse an `--out` inside a bundle; read the fleet-wide files from a credentials
//! archive when asked; lock `--out`; read the journal of an interrupted
//! run (the same arguments resume it, others are refused); refuse existing
//! bundles unless forced; then, batch by batch, issue in parallel, append
//! the batch to the journal, write its bundles in one transaction; last,
//! compact the journal into the record.
//!
//! Memory and time are linear in nothing but the id list: a batch is at
//! most [`BATCH_TAR`] or [`BATCH_DIR`] devices, and the record is written
//! from the journal as it is read. The requests of `--csr` are read up
//! front (their ids are needed for the checks and the journal's header)
//! and held parsed: a CN, the public key (at most 550 bytes for RSA 4096)
//! and its digest, not the files (docs/device-certs.md, "Fleet scale:
//! batches").

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{self, BufRead, BufReader, IsTerminal, Write};
use std::num::NonZeroUsize;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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
use crate::digest::{self, sha256_hex};
use crate::error::{Error, Result, EXIT_OK};
use crate::escape::escape;
use crate::files::{self, Kind};
use crate::intake::catalogue::Side;
use crate::plan::bundles::{
    self, DeviceBundle, DeviceRecord, FleetFiles, Format, RunHeader, DEVICES_CSV, DEVICES_JSON,
    JOURNAL,
};
use crate::plan::files::MODE_FILE;
use crate::plan::methods::{Method, Source};
use crate::plan::options::{FragmentOptions, Hsm, ReportConfig, StageOptions, UnknownPolicy};
use crate::plan::staging;
use crate::report::counted;
use crate::secret::Secret;
use crate::write::apply::{self, Session};
use sha2::{Digest, Sha256};

/// The most devices one run issues for: the id list and the record's
/// index are held in memory (a few MiB at this size), nothing else grows.
pub const MAX_DEVICES: usize = 100_000;

/// Devices per batch with tar bundles: one file each.
pub const BATCH_TAR: usize = 1_000;
/// Devices per batch with folder bundles: each holds four folders open
/// while its batch is written, and 800 stay below the common limit of
/// 1,024 open files.
pub const BATCH_DIR: usize = 200;

const SECONDS_PER_DAY: i64 = 86_400;

/// The record's `key_source` of a key made here, and of a request's.
const KEY_SOURCE_MINTED: &str = "minted";
const KEY_SOURCE_CSR: &str = "csr";

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

/// The requests of `--csr`, read and checked, in the order of their
/// files, with the digest of their files for the journal's header.
#[derive(Debug)]
struct Requests {
    requests: Vec<Request>,
    digest: String,
}

/// `waiting` is told, once, when the run waits for another one that holds
/// its roots.
pub fn run(config: &Config, waiting: fn(&str)) -> Result<Outcome> {
    let started = Instant::now();
    let (ca, ca_key) = read_ca(config)?;
    let requests = match &config.csr {
        Some(path) => Some(read_requests(path)?),
        None => None,
    };
    let ids: Vec<String> = match &requests {
        Some(r) => r.requests.iter().map(|r| r.common_name.clone()).collect(),
        None => config.ids.clone(),
    };
    check_ids(&ids)?;
    check_subjects(&ca, &ids, config)?;
    refuse_out_in_a_bundle(&config.out)?;
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
    let header = run_header(&ca, &ca_key, config, &ids, requests.as_ref(), &fleet)?;
    let session = Session::open(&config.out, config.lock_timeout, Some(waiting))?;
    let run = Run {
        config,
        ids: &ids,
        requests: requests.as_ref().map(|r| r.requests.as_slice()),
        ca: &ca,
        fleet: &fleet,
        header,
        session: &session,
        not_before,
        not_after,
    };
    let done = match run.run() {
        Ok(done) => done,
        Err(e) => {
            session.abandon();
            return Err(e);
        }
    };
    session.finish(config.epoch);
    if !config.quiet {
        stderr.push_str(&summary(config, &done, started.elapsed()));
    }
    Ok(Outcome {
        stdout: String::new(),
        stderr,
        exit: EXIT_OK,
    })
}

/// What a run did: issued now, and kept from an interrupted or finished
/// run of the same arguments.
#[derive(Debug, Default)]
struct Done {
    issued: usize,
    kept: usize,
}

/// `issued 2 device certificates (ec-p256) in `out` (0.41 s)`, one line;
/// the kind is the key type, or `from certificate requests`.
fn summary(config: &Config, done: &Done, took: Duration) -> String {
    let out = escape(&config.out.display().to_string()).into_owned();
    let secs = took.as_secs_f64();
    if done.issued == 0 {
        let were = if done.kept == 1 { "was" } else { "were" };
        return format!(
            "all {} {were} issued already in `{out}` by an earlier run of the same command; nothing new was written ({secs:.2} s)\n",
            counted(done.kept as u64, "device certificate", "device certificates"),
        );
    }
    let kept = if done.kept > 0 {
        let was = if done.kept == 1 { "was" } else { "were" };
        format!(
            "; {} more {was} issued by the interrupted run it finished",
            done.kept
        )
    } else {
        String::new()
    };
    let kind = if config.csr.is_some() {
        "from certificate requests"
    } else {
        config.key_type.as_str()
    };
    format!(
        "issued {} ({kind}) in `{out}` ({secs:.2} s){kept}\n",
        counted(
            done.issued as u64,
            "device certificate",
            "device certificates"
        ),
    )
}

/// What a run was asked for, as the journal's first line records it:
/// `ca_key` says where the CA key is (its file's digest, or the token's
/// URI, which holds no PIN).
fn run_header(
    ca: &FleetCa,
    ca_key: &str,
    config: &Config,
    all: &[String],
    requests: Option<&Requests>,
    fleet: &FleetFiles,
) -> Result<RunHeader> {
    let mut ids = Vec::new();
    for id in all {
        ids.extend_from_slice(id.as_bytes());
        ids.push(b'\n');
    }
    let s = &config.subject;
    let subject = format!(
        "C={:?}\nST={:?}\nO={:?}\nOU={:?}\n",
        s.country, s.state, s.organization, s.unit
    );
    let mut fleet_bytes = Vec::new();
    for (path, bytes) in fleet {
        fleet_bytes.extend_from_slice(path.as_bytes());
        fleet_bytes.push(0);
        fleet_bytes.extend_from_slice(sha256_hex(bytes).as_bytes());
        fleet_bytes.push(b'\n');
    }
    Ok(RunHeader {
        journal: 1,
        fleet_ca: ca.info().sha256.clone(),
        fleet_ca_key: ca_key.to_string(),
        ids: sha256_hex(&ids),
        devices: all.len(),
        format: match config.format {
            Format::Dir => "dir",
            Format::Tar => "tar",
        }
        .to_string(),
        key_type: match requests {
            Some(_) => KEY_SOURCE_CSR,
            None => config.key_type.as_str(),
        }
        .to_string(),
        requests: requests.map(|r| r.digest.clone()).unwrap_or_default(),
        days: config.days,
        subject: sha256_hex(subject.as_bytes()),
        fleet_files: sha256_hex(&fleet_bytes),
    })
}

/// The journal of an interrupted run, as read.
#[derive(Debug)]
struct Journal {
    header: RunHeader,
    /// The ids it records.
    ids: HashSet<String>,
    /// Where the last whole line ends: a line cut by a kill is dropped.
    whole: u64,
    len: u64,
}

/// One run, under the lock of its output folder.
struct Run<'a> {
    config: &'a Config,
    /// Every device of the run, in order: the command line's ids or the
    /// requests' CNs.
    ids: &'a [String],
    /// With `--csr`: the request of each id, side by side with `ids`.
    requests: Option<&'a [Request]>,
    ca: &'a FleetCa,
    fleet: &'a FleetFiles,
    header: RunHeader,
    session: &'a Session,
    not_before: i64,
    not_after: i64,
}

impl Run<'_> {
    fn run(&self) -> Result<Done> {
        let config = self.config;
        let header_line = bundles::journal_line(&self.header)?;
        let digest = sha256_hex(header_line.as_bytes());
        let mut journal = self.read_journal()?;
        if config.force && journal.as_ref().is_some_and(|j| j.header != self.header) {
            // Another run's journal: starting over, every bundle issued
            // again and replaced. The same run's journal is resumed.
            journal = None;
            self.session.remove(JOURNAL)?;
        }
        if let Some(j) = &journal {
            let differ = j.header.differences(&self.header);
            if !differ.is_empty() {
                return Err(Error::Invalid(format!(
                    "`{}` is the journal of an interrupted run with other arguments (they differ in: {}); nothing was written: run that command again to finish it, or give --force to issue every bundle of this command anew (the journal's bundles are replaced), or use another --out folder",
                    self.shown(JOURNAL),
                    differ.join(", ")
                )));
            }
        } else if !config.force && self.finished(&digest)? {
            return Ok(Done {
                issued: 0,
                kept: self.ids.len(),
            });
        }

        // Journaled bundles that are whole are kept; the others are
        // issued again (their keys never left this folder).
        let mut kept: HashSet<&str> = HashSet::new();
        let mut partial = Vec::new();
        if let Some(j) = &journal {
            for id in self.ids {
                if !j.ids.contains(id.as_str()) {
                    continue;
                }
                let files = self.bundle_files(id);
                let mut whole = true;
                for f in &files {
                    whole &= self.session.is_file(f)?;
                }
                if whole {
                    kept.insert(id.as_str());
                } else {
                    partial.push((id.as_str(), files));
                }
            }
        }
        self.check_existing(journal.as_ref(), &kept, &partial)?;

        // Leftovers of a killed run: its temporaries in the folder (tars,
        // the record) and in the partial bundles' folders, and the files
        // those hold.
        self.session.recover("")?;
        for (_, files) in &partial {
            let mut folders = BTreeSet::new();
            for f in files {
                if let Some((folder, _)) = f.rsplit_once('/') {
                    folders.insert(folder);
                }
            }
            for folder in folders {
                self.session.recover(folder)?;
            }
            for f in files {
                self.session.remove(f)?;
            }
        }
        let created = match &journal {
            Some(j) => {
                if j.whole < j.len {
                    self.session.truncate(JOURNAL, j.whole)?;
                }
                false
            }
            None => {
                self.session
                    .append(JOURNAL, header_line.as_bytes(), config.sync)?;
                true
            }
        };

        // By index: a request is found beside its id.
        let to_issue: Vec<usize> = (0..self.ids.len())
            .filter(|&i| {
                self.ids
                    .get(i)
                    .is_some_and(|id| !kept.contains(id.as_str()))
            })
            .collect();
        let batch = match config.format {
            Format::Dir => BATCH_DIR,
            Format::Tar => BATCH_TAR,
        };
        let mut progress = Progress::new(!config.quiet, self.ids.len());
        let mut done = Done {
            issued: 0,
            kept: kept.len(),
        };
        progress.show(done.kept);
        for ids in to_issue.chunks(batch) {
            if let Err(e) = self.batch(ids, created && done.issued == 0 && kept.is_empty()) {
                progress.clear();
                if done.issued + done.kept > 0 {
                    // The library's one word outside the outcome: the
                    // error that follows is the command's.
                    let _ = writeln!(
                        io::stderr(),
                        "note: {} of {} bundles are written and recorded in `{}`; run the same command again to finish",
                        done.issued + done.kept,
                        self.ids.len(),
                        self.shown(JOURNAL)
                    );
                }
                return Err(e);
            }
            done.issued += ids.len();
            progress.show(done.issued + done.kept);
        }
        progress.clear();
        self.compact(&digest)?;
        Ok(done)
    }

    fn shown(&self, name: &str) -> String {
        escape(&self.session.shown(name).display().to_string()).into_owned()
    }

    /// The files of `id`'s bundle: no `pkey.pem` in a request's.
    fn bundle_files(&self, id: &str) -> Vec<String> {
        bundles::bundle_files(id, self.fleet, self.config.format, self.requests.is_none())
    }

    /// Issues, journals and writes one batch: the devices at `at` in
    /// `ids`. On a failure the batch's bundles are rolled back and its
    /// lines cut from the journal (the journal itself removed when `first`
    /// and it holds nothing else).
    fn batch(&self, at: &[usize], first: bool) -> Result<()> {
        let config = self.config;
        let mut ids: Vec<&str> = Vec::with_capacity(at.len());
        let mut keys: Vec<Option<&[u8]>> = Vec::with_capacity(at.len());
        let mut key_types: Vec<String> = Vec::with_capacity(at.len());
        for &i in at {
            let id = self.ids.get(i).ok_or_else(|| {
                Error::Invalid(format!("internal error: device {i} is not in the run"))
            })?;
            ids.push(id);
            match self.requests {
                Some(requests) => {
                    let request = requests.get(i).ok_or_else(|| {
                        Error::Invalid(format!("internal error: device `{id}` has no request"))
                    })?;
                    keys.push(Some(request.spki_der.as_slice()));
                    key_types.push(key_type_name(&request.key));
                }
                None => {
                    keys.push(None);
                    key_types.push(config.key_type.as_str().to_string());
                }
            }
        }
        let issued = issue_all(
            self.ca,
            config,
            &ids,
            &keys,
            self.not_before,
            self.not_after,
        )?;
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
                key_source: if i.key_pem.is_some() {
                    KEY_SOURCE_MINTED
                } else {
                    KEY_SOURCE_CSR
                },
            })
            .collect();
        let plan = bundles::plan(&bundles, self.fleet, config.format, config.epoch)?;
        check_outputs(config, &plan)?;
        let mut lines = String::new();
        for b in &bundles {
            lines.push_str(&bundles::journal_line(&DeviceRecord::of(b, config.format))?);
        }
        // Before any key of the batch is in place: a killed run's bundles
        // are all in the journal.
        let before = self
            .session
            .append(JOURNAL, lines.as_bytes(), config.sync)?;
        let write = apply::Options {
            epoch: config.epoch,
            force: config.force,
            sync: config.sync,
            lock_timeout: config.lock_timeout,
            waiting: None,
        };
        if let Err(e) = self.session.apply(&plan, &write) {
            if first {
                let _ = self.session.remove(JOURNAL);
            } else {
                let _ = self.session.truncate(JOURNAL, before);
            }
            return Err(e);
        }
        Ok(())
    }

    /// The journal in `--out`, when there is one.
    fn read_journal(&self) -> Result<Option<Journal>> {
        let Some(file) = self.session.open_read(JOURNAL)? else {
            return Ok(None);
        };
        let damaged = |line: usize, why: &str| {
            Error::Invalid(format!(
                "`{}` line {line}: {why}; the journal of an interrupted run is damaged: give --force to issue every bundle anew, or use another --out folder",
                self.shown(JOURNAL)
            ))
        };
        let mut reader = BufReader::new(file);
        let mut line = Vec::new();
        let mut at = 0u64;
        let mut header: Option<RunHeader> = None;
        let mut ids = HashSet::new();
        let mut n = 0;
        loop {
            line.clear();
            let read = reader
                .read_until(b'\n', &mut line)
                .map_err(|e| Error::io("read", &self.session.shown(JOURNAL), e))?;
            if read == 0 {
                break;
            }
            if line.last() != Some(&b'\n') {
                // Cut by a kill while it was appended: its batch's keys
                // were not written yet.
                let len = at + read as u64;
                return Ok(header.map(|header| Journal {
                    header,
                    ids,
                    whole: at,
                    len,
                }));
            }
            n += 1;
            at += read as u64;
            match &header {
                None => {
                    header = Some(
                        serde_json::from_slice(&line)
                            .map_err(|_| damaged(n, "not the journal's header"))?,
                    )
                }
                Some(_) => {
                    let record: DeviceRecord = serde_json::from_slice(&line)
                        .map_err(|_| damaged(n, "not a device's line"))?;
                    ids.insert(record.id);
                }
            }
        }
        Ok(header.map(|header| Journal {
            header,
            ids,
            whole: at,
            len: at,
        }))
    }

    /// True when the record in `--out` is that of a finished run of the
    /// same arguments and every bundle it names is whole.
    fn finished(&self, digest: &str) -> Result<bool> {
        #[derive(serde::Deserialize)]
        struct RunOnly {
            #[serde(default)]
            run: Option<String>,
        }
        let Some(file) = self.session.open_read(DEVICES_JSON)? else {
            return Ok(false);
        };
        let Ok(record) = serde_json::from_reader::<_, RunOnly>(BufReader::new(file)) else {
            return Ok(false);
        };
        if record.run.as_deref() != Some(digest) || !self.session.is_file(DEVICES_CSV)? {
            return Ok(false);
        }
        for id in self.ids {
            for f in self.bundle_files(id) {
                if !self.session.is_file(&f)? {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// An existing bundle or record is replaced only with force (a
    /// device's key must not be swapped by accident), or when the journal
    /// of this run's arguments names it.
    fn check_existing(
        &self,
        journal: Option<&Journal>,
        kept: &HashSet<&str>,
        partial: &[(&str, Vec<String>)],
    ) -> Result<()> {
        let config = self.config;
        if config.force {
            return Ok(());
        }
        let resumed: HashSet<&str> = partial.iter().map(|(id, _)| *id).collect();
        let mut taken = Vec::new();
        for id in self.ids {
            if kept.contains(id.as_str()) || resumed.contains(id.as_str()) {
                continue;
            }
            let name = config.format.bundle_path(id);
            if self.exists(&name)? {
                taken.push(name);
            }
        }
        if journal.is_none() {
            for name in [DEVICES_JSON, DEVICES_CSV] {
                if self.exists(name)? {
                    taken.push(name.to_string());
                }
            }
        }
        if taken.is_empty() {
            return Ok(());
        }
        Err(Error::Invalid(format!(
            "`{}` already holds bundles or a record of an earlier run; nothing was written (give another --out folder, or --force to replace them):\n{}",
            escape(&config.out.display().to_string()),
            listed(&taken)
        )))
    }

    /// Anything (a file, a folder, a link) named `name` in `--out`.
    fn exists(&self, name: &str) -> Result<bool> {
        let path = self.config.out.join(name);
        match std::fs::symlink_metadata(&path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("look at", &path, e)),
        }
    }

    /// The journal into `devices.json` and `devices.csv` (each id's last
    /// line, in the order of the ids), then the journal removed.
    fn compact(&self, digest: &str) -> Result<()> {
        let shown = self.session.shown(JOURNAL);
        let file = self
            .session
            .open_read(JOURNAL)?
            .ok_or_else(|| Error::io("read", &shown, io::ErrorKind::NotFound.into()))?;
        // id -> (offset, length) of its last line.
        let mut index: HashMap<String, (u64, usize)> = HashMap::new();
        {
            #[derive(serde::Deserialize)]
            struct IdOnly {
                id: String,
            }
            let mut reader = BufReader::new(&file);
            let mut line = Vec::new();
            let mut at = 0u64;
            let mut first = true;
            loop {
                line.clear();
                let read = reader
                    .read_until(b'\n', &mut line)
                    .map_err(|e| Error::io("read", &shown, e))?;
                if read == 0 {
                    break;
                }
                if !first {
                    if let Ok(d) = serde_json::from_slice::<IdOnly>(&line) {
                        index.insert(d.id, (at, read));
                    }
                }
                first = false;
                at += read as u64;
            }
        }
        let config = self.config;
        let (index, file) = (&index, &file);
        let devices = || {
            let mut buf = Vec::new();
            self.ids.iter().map(move |id| {
                let (at, len) = index.get(id).copied().ok_or_else(|| {
                    io::Error::other(format!("device `{id}` is not in the journal"))
                })?;
                buf.resize(len, 0);
                file.read_exact_at(&mut buf, at)?;
                serde_json::from_slice::<DeviceRecord>(&buf).map_err(io::Error::other)
            })
        };
        let write = apply::Options {
            epoch: config.epoch,
            force: true,
            sync: config.sync,
            lock_timeout: config.lock_timeout,
            waiting: None,
        };
        let info = self.ca.info();
        self.session
            .write_streamed(DEVICES_JSON, MODE_FILE, &write, &mut |out| {
                bundles::write_json(out, info, digest, devices())
            })?;
        self.session
            .write_streamed(DEVICES_CSV, MODE_FILE, &write, &mut |out| {
                bundles::write_csv(out, devices())
            })?;
        self.session.remove(JOURNAL)?;
        Ok(())
    }
}

/// Progress on a terminal: `issuing device certificates: 2000 of 100000`,
/// at most four times a second, on one line that is cleared at the end.
struct Progress {
    on: bool,
    total: usize,
    last: Option<Instant>,
    shown: bool,
}

impl Progress {
    const EVERY: Duration = Duration::from_millis(250);

    fn new(on: bool, total: usize) -> Progress {
        Progress {
            on: on && io::stderr().is_terminal(),
            total,
            last: None,
            shown: false,
        }
    }

    fn show(&mut self, done: usize) {
        if !self.on || self.last.is_some_and(|t| t.elapsed() < Self::EVERY) {
            return;
        }
        self.last = Some(Instant::now());
        self.shown = true;
        let _ = write!(
            io::stderr(),
            "\r\x1b[2Kissuing device certificates: {done} of {}",
            self.total
        );
    }

    fn clear(&mut self) {
        if self.shown {
            let _ = write!(io::stderr(), "\r\x1b[2K");
            self.shown = false;
        }
    }
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
        .map(|f| f.path.as_str())
        .chain([DEVICES_JSON, DEVICES_CSV])
        .map(|f| {
            let path = config.out.join(f);
            (flag_file("--out's", &path), path)
        })
        .collect();
    refuse_outputs_over_inputs(&outputs, &inputs)
}

/// `--out` must not be inside a bundle (a folder holding
/// `var/sota/import`, or one a record beside it names): the new keys would
/// land in that device's files.
fn refuse_out_in_a_bundle(out: &Path) -> Result<()> {
    // The existing part of the folder, resolved: what is not there yet
    // holds no bundle.
    // Each ancestor once (a relative path ends at `.`): a finite walk,
    // even when the working folder itself is gone.
    let base = out
        .ancestors()
        .map(|a| {
            if a.as_os_str().is_empty() {
                Path::new(".")
            } else {
                a
            }
        })
        .find_map(|a| std::fs::canonicalize(a).ok());
    let Some(base) = base else { return Ok(()) };
    let refuse = |bundle: &Path, why: &str| {
        Err(Error::Usage(format!(
            "--out `{}` is inside the device bundle `{}` ({why}): the keys would land in that device's files; nothing was written: give a folder outside every bundle",
            escape(&out.display().to_string()),
            escape(&bundle.display().to_string())
        )))
    };
    for folder in base.ancestors() {
        // A bundle's import folder holds its certificate or key (the
        // system's own `/var/sota/import` is not a bundle).
        let import = folder.join("var/sota/import");
        let holds = |name: &str| std::fs::symlink_metadata(import.join(name)).is_ok();
        if folder.parent().is_some() && (holds("client.pem") || holds("pkey.pem")) {
            return refuse(folder, "it holds var/sota/import with a certificate or key");
        }
        let (Some(parent), Some(name)) = (folder.parent(), folder.file_name()) else {
            continue;
        };
        let Some(name) = name.to_str() else { continue };
        if recorded_in(parent, name) {
            return refuse(folder, "a record beside it names it");
        }
    }
    Ok(())
}

/// True when `devices.json` or the journal in `folder` names a bundle
/// `name`.
fn recorded_in(folder: &Path, name: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct PathOnly {
        path: String,
    }
    #[derive(serde::Deserialize)]
    struct Paths {
        devices: Vec<PathOnly>,
    }
    if let Ok(file) = std::fs::File::open(folder.join(DEVICES_JSON)) {
        if let Ok(record) = serde_json::from_reader::<_, Paths>(BufReader::new(file)) {
            if record.devices.iter().any(|d| d.path == name) {
                return true;
            }
        }
    }
    if let Ok(file) = std::fs::File::open(folder.join(JOURNAL)) {
        for line in BufReader::new(file).split(b'\n').map_while(io::Result::ok) {
            if serde_json::from_slice::<PathOnly>(&line).is_ok_and(|d| d.path == name) {
                return true;
            }
        }
    }
    false
}

/// Reads the CA certificate and key and checks them together; with where
/// the key is, as the journal's header records it (`file:` and the key
/// file's SHA-256, or `token:` and the URI: never a PIN).
fn read_ca(config: &Config) -> Result<(FleetCa, String)> {
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

/// Every id well formed, given once, and not a name of the record; every
/// problem at once.
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

/// Issues the certificates of `ids`, cut into one chunk per core: a key
/// made for each, or the key of its request (`keys`, beside `ids`).
fn issue_all(
    ca: &FleetCa,
    config: &Config,
    ids: &[&str],
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
    let mut issued = Vec::with_capacity(ids.len());
    for chunk in results {
        issued.extend(chunk?);
    }
    Ok(issued)
}

/// The requests of `--csr`: one file, or every file of a folder (not its
/// subfolders, not names starting with `.`), sorted by name; each checked
/// (its signature, its key, one CN that is a valid id and not a name of the
/// record); ids given once. Every problem at once, each naming its file.
/// Only the parsed requests are kept, not the files, and a digest of the
/// files (each one's name and SHA-256) for the journal's header.
fn read_requests(path: &Path) -> Result<Requests> {
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

/// `items` as a refusal lists them: one `  - item` line each, the first
/// 20, then how many more.
fn listed(items: &[String]) -> String {
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
