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
//!
//! The modules: `config.rs` what a run is given and its limits;
//! `inputs.rs` the fleet CA, the ids, the requests and the archive's
//! files, read and checked up front, and no output over an input; `existing.rs` the checks of what
//! `--out` already holds; `journal.rs` the journal's header, the journal
//! read back, and its compaction into the record; `run.rs` the run itself,
//! batch by batch, and its progress line.

use std::time::{Duration, Instant};

use crate::commands::shared::Outcome;
use crate::error::{Result, EXIT_OK};
use crate::escape::escape;
use crate::report::counted;
use crate::write::apply::Session;

mod config;
mod existing;
mod inputs;
mod journal;
mod run;

use config::SECONDS_PER_DAY;
use existing::refuse_out_in_a_bundle;
use inputs::{check_ids, check_subjects, fleet_files, read_ca, read_requests};
use journal::run_header;
use run::{Done, Run};

pub use config::{CaKeySource, Config, TokenSource, BATCH_DIR, BATCH_TAR, MAX_DEVICES};

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
