//! One run under the lock of its output folder: the journal resumed or
//! started, the devices cut into batches, each issued on all cores,
//! journaled and written in one transaction; the progress line.

use std::collections::{BTreeSet, HashSet};
use std::io::{self, IsTerminal, Write};
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use super::config::{Config, BATCH_DIR, BATCH_TAR, KEY_SOURCE_CSR, KEY_SOURCE_MINTED};
use super::inputs::check_outputs;
use crate::crypto::csr::Request;
use crate::crypto::issue::{FleetCa, Issued, KeyType};
use crate::crypto::x509::KeyAlgorithm;
use crate::digest::sha256_hex;
use crate::error::{Error, Result};
use crate::escape::escape;
use crate::plan::bundles::{
    self, DeviceBundle, DeviceRecord, FleetFiles, Format, RunHeader, JOURNAL,
};
use crate::write::apply::{self, Session};

/// What a run did: issued now, and kept from an interrupted or finished
/// run of the same arguments.
#[derive(Debug, Default)]
pub(super) struct Done {
    pub(super) issued: usize,
    pub(super) kept: usize,
}

/// One run, under the lock of its output folder.
pub(super) struct Run<'a> {
    pub(super) config: &'a Config,
    /// Every device of the run, in order: the command line's ids or the
    /// requests' CNs.
    pub(super) ids: &'a [String],
    /// With `--csr`: the request of each id, side by side with `ids`.
    pub(super) requests: Option<&'a [Request]>,
    pub(super) ca: &'a FleetCa,
    pub(super) fleet: &'a FleetFiles,
    pub(super) header: RunHeader,
    pub(super) session: &'a Session,
    pub(super) not_before: i64,
    pub(super) not_after: i64,
}

impl Run<'_> {
    pub(super) fn run(&self) -> Result<Done> {
        let config = self.config;
        let header_line = bundles::journal_line(&self.header)?;
        let digest = sha256_hex(header_line.as_bytes());
        let mut journal = match self.read_journal() {
            // A damaged journal: with --force the run starts over, as its
            // refusal says.
            Err(Error::Invalid(_)) if config.force => {
                self.session.remove(JOURNAL)?;
                None
            }
            read => read?,
        };
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

    pub(super) fn shown(&self, name: &str) -> String {
        escape(&self.session.shown(name).display().to_string()).into_owned()
    }

    /// The files of `id`'s bundle: no `pkey.pem` in a request's.
    pub(super) fn bundle_files(&self, id: &str) -> Vec<String> {
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
}

/// Progress on a terminal: `issuing device certificates: 2000 of 100000`,
/// at most four times a second, on one line that is cleared at the end.
pub(super) struct Progress {
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

/// Issues the certificates of `ids`, cut into one chunk per core: a key
/// made for each, or the key of its request (`keys`, beside `ids`).
pub(super) fn issue_all(
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

/// As the record names a request's key type.
pub(super) fn key_type_name(key: &KeyAlgorithm) -> String {
    match key {
        KeyAlgorithm::EcP256 => KeyType::EcP256.as_str().to_string(),
        KeyAlgorithm::EcP384 => KeyType::EcP384.as_str().to_string(),
        KeyAlgorithm::Rsa { bits } => format!("rsa-{bits}"),
        other => other.to_string(),
    }
}
