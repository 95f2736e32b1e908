//! The journal of a run: its header (what the run was asked for), the
//! journal read back to resume an interrupted run, and its compaction
//! into the record (`devices.json`, `devices.csv`).

use std::collections::{HashMap, HashSet};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::FileExt;

use super::config::{Config, KEY_SOURCE_CSR, MAX_DEVICES};
use super::inputs::Requests;
use super::run::Run;
use crate::crypto::issue::FleetCa;
use crate::digest::sha256_hex;
use crate::error::{Error, Result};
use crate::plan::bundles::{
    self, DeviceRecord, FleetFiles, Format, RunHeader, DEVICES_CSV, DEVICES_JSON, JOURNAL,
};
use crate::plan::files::MODE_FILE;
use crate::write::apply;

/// What a run was asked for, as the journal's first line records it:
/// `ca_key` says where the CA key is (its file's digest, or the token's
/// URI, which holds no PIN).
pub(super) fn run_header(
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

/// The longest line a journal may hold: its header (digests and counts)
/// and a device's line (its record) are a few hundred bytes; a longer one
/// is not ours, and is never read whole into memory.
pub(super) const MAX_LINE: usize = 64 << 10;

/// One line of `reader` into `line` (cleared first), its newline included,
/// reading at most [`MAX_LINE`] + 1 bytes: the bytes read, 0 at the end;
/// `Err(None)` for a longer line.
fn read_line(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
) -> std::result::Result<usize, Option<io::Error>> {
    line.clear();
    let read = reader
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', line)
        .map_err(Some)?;
    if read > MAX_LINE {
        return Err(None);
    }
    Ok(read)
}

/// The journal of an interrupted run, as read.
#[derive(Debug)]
pub(super) struct Journal {
    pub(super) header: RunHeader,
    /// The ids it records.
    pub(super) ids: HashSet<String>,
    /// Where the last whole line ends: a line cut by a kill is dropped.
    pub(super) whole: u64,
    pub(super) len: u64,
}

impl Run<'_> {
    /// The journal in `--out`, when there is one.
    pub(super) fn read_journal(&self) -> Result<Option<Journal>> {
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
            let read = match read_line(&mut reader, &mut line) {
                Ok(read) => read,
                Err(Some(e)) => return Err(Error::io("read", &self.session.shown(JOURNAL), e)),
                Err(None) => {
                    return Err(damaged(
                        n + 1,
                        &format!("longer than {MAX_LINE} bytes, not a line of ours"),
                    ))
                }
            };
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
                    if ids.len() > MAX_DEVICES {
                        return Err(damaged(
                            n,
                            &format!("more than {MAX_DEVICES} devices, more than a run issues"),
                        ));
                    }
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

    /// The journal into `devices.json` and `devices.csv` (each id's last
    /// line, in the order of the ids), then the journal removed.
    pub(super) fn compact(&self, digest: &str) -> Result<()> {
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
                // The journal this run read (bounded) and appended to.
                let read = read_line(&mut reader, &mut line).map_err(|e| {
                    Error::io(
                        "read",
                        &shown,
                        e.unwrap_or_else(|| io::Error::other("a line too long")),
                    )
                })?;
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
