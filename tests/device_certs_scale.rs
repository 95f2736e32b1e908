//! `device-certs` over many devices and runs: serials unique across a
//! batch; an earlier run's bundles refused unless forced; a failure part
//! way leaves nothing; a run killed at many points is finished by the same
//! command; a run that failed in a later batch is resumed, and other
//! arguments are refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::device_certs::*;
use common::*;
use sha2::Digest;

#[test]
fn serials_are_unique_across_a_batch() {
    let (dir, pki) = fleet();
    let out = dir.join("out");
    issue(&pki, &out, &["--count", "500", "--id-prefix", "n"]).success();
    let json = record(&out);
    let devices = json["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 500);
    assert_eq!(devices[0]["id"], "n001");
    assert_eq!(devices[499]["id"], "n500");
    let serials: BTreeSet<&str> = devices
        .iter()
        .map(|d| d["serial"].as_str().unwrap())
        .collect();
    assert_eq!(serials.len(), 500);
}

#[test]
fn refuses_existing_bundles_unless_forced() {
    let (dir, pki) = fleet();
    let out = dir.join("out");
    issue(&pki, &out, &["--device-id", "a"]).success();
    let first = fs::read(out.join("a").join(PKEY)).unwrap();
    let record = fs::read(out.join("devices.json")).unwrap();
    issue(&pki, &out, &["--device-id", "a", "--device-id", "b"])
        .code(1)
        .stderr_has("already holds bundles or a record of an earlier run; nothing was written (give another --out folder, or --force to replace them):\n  - a\n  - devices.json\n  - devices.csv");
    assert!(!out.join("b").exists());
    assert_eq!(fs::read(out.join("a").join(PKEY)).unwrap(), first);
    assert_eq!(fs::read(out.join("devices.json")).unwrap(), record);
    issue(
        &pki,
        &out,
        &["--device-id", "a", "--device-id", "b", "--force"],
    )
    .success();
    assert_ne!(fs::read(out.join("a").join(PKEY)).unwrap(), first);
    assert!(out.join("b").join(PKEY).exists());
}

#[test]
fn a_failure_part_way_leaves_nothing() {
    let (dir, pki) = fleet();
    let out = dir.join("out");
    // The third bundle cannot be written (a file where its folder goes):
    // the first two and the record are not left behind.
    in_the_way(&out, "c");
    issue(
        &pki,
        &out,
        &[
            "--device-id",
            "a",
            "--device-id",
            "b",
            "--device-id",
            "c",
            "--force",
        ],
    )
    .code(1)
    .stderr_has("host:c/var exists and is not a folder");
    let mut left: Vec<_> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["c"]);
}

/// The ids of `out`'s journal lines.
fn journaled(out: &Path) -> BTreeSet<String> {
    let Ok(text) = fs::read_to_string(out.join(".sota-stage-devices.journal")) else {
        return BTreeSet::new();
    };
    text.lines()
        .skip(1)
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["id"].as_str().map(str::to_string))
        .collect()
}

/// The device id a file under `out` belongs to: its first path part,
/// without `.tar`, or for a temporary in `out` the name inside it.
fn owner(rel: &str) -> String {
    let first = rel.split('/').next().unwrap();
    let first = first
        .strip_prefix('.')
        .and_then(|f| f.split(".sota-stage-").next())
        .unwrap_or(first);
    first.strip_suffix(".tar").unwrap_or(first).to_string()
}

#[test]
fn a_run_killed_at_many_points_is_finished_by_the_same_command() {
    let (dir, pki) = fleet();
    let n = 2000;
    // Kill points from the clock, different every run; printed, so a
    // failure can be tried again with the same ones.
    let mut points = KillPoints::from_clock();
    for format in ["dir", "tar"] {
        let out = dir.join(format);
        let command = || {
            let mut cmd = device_certs_command(&pki.ca().cert, &pki.ca().key, &out);
            cmd.args(["--format", format, "--count", &n.to_string()])
                .args(["--id-prefix", "dev-", "--quiet"]);
            cmd
        };
        for round in 0..5 {
            let delay = 30 + points.next(1200);
            eprintln!("{format}: round {round}, killed after {delay} ms");
            let mut child = command()
                .env_remove("SOTA_STAGE_SYNC")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(delay));
            child.kill().unwrap();
            child.wait().unwrap();
            // No key outside a bundle the journal (or, finished, the
            // record) names.
            if !out.exists() {
                continue;
            }
            let recorded = journaled(&out);
            let finished = out.join("devices.json").exists() && recorded.is_empty();
            for rel in names_under(&out) {
                let path = out.join(&rel);
                if path.is_dir()
                    || !fs::read(&path)
                        .unwrap()
                        .windows(11)
                        .any(|w| w == b"PRIVATE KEY")
                        && !rel.ends_with(".tar")
                        && !rel.contains(".tar.")
                {
                    continue;
                }
                assert!(
                    finished || recorded.contains(&owner(&rel)),
                    "{format}, round {round}: `{rel}` holds a key of a device the journal does not name"
                );
            }
        }
        let done = command().output().unwrap();
        let stderr = String::from_utf8_lossy(&done.stderr);
        assert_eq!(done.status.code(), Some(0), "{format}: {stderr}");
        // Every id once, in the record, with its bundle; nothing else.
        let names = names_under(&out);
        let left = leftovers(&out);
        assert!(left.is_empty(), "{format}: leftovers: {left:?}");
        let csv = fs::read_to_string(out.join("devices.csv")).unwrap();
        let ids: Vec<&str> = csv
            .lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap())
            .collect();
        let expected: Vec<String> = (1..=n).map(|i| format!("dev-{i:04}")).collect();
        assert_eq!(ids, expected, "{format}: the record");
        let json = record(&out);
        assert_eq!(json["devices"].as_array().unwrap().len(), n);
        let top: BTreeSet<String> = names.iter().filter(|n| !n.contains('/')).cloned().collect();
        let mut want: BTreeSet<String> = expected
            .iter()
            .map(|id| {
                if format == "tar" {
                    format!("{id}.tar")
                } else {
                    id.clone()
                }
            })
            .collect();
        want.insert("devices.json".into());
        want.insert("devices.csv".into());
        assert_eq!(top, want, "{format}: the folder");
        for line in csv.lines().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            let cert = if format == "dir" {
                fs::read(out.join(f[0]).join(CLIENT)).unwrap()
            } else {
                continue;
            };
            let pem = String::from_utf8(cert).unwrap();
            let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
            let der = base64_decode(&b64);
            assert_eq!(hex(&sha2::Sha256::digest(&der)), f[2], "{}", f[0]);
            assert!(out.join(f[0]).join(PKEY).is_file());
        }
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            _ => 63,
        }
    };
    let bytes: Vec<u8> = text.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::new();
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c) << (18 - 6 * i);
        }
        let take = chunk.len() - 1;
        for i in 0..take {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

#[test]
fn a_run_that_failed_in_a_later_batch_is_resumed_and_other_arguments_are_refused() {
    let (dir, pki) = fleet();
    let out = dir.join("out");
    // Folder bundles go 200 to a batch: the 250th cannot be written (a
    // file where its folder goes), so the first batch stays, journaled.
    in_the_way(&out, "d-250");
    let count = ["--count", "250", "--id-prefix", "d-", "--force"];
    let run = issue(&pki, &out, &count);
    run.code(1)
        .stderr_has("host:d-250/var exists and is not a folder")
        .stderr_has("note: 200 of 250 bundles are written and recorded in `");
    assert!(out.join("d-200").join(PKEY).is_file());
    assert!(!out.join("d-201").exists());
    assert!(!out.join("devices.json").exists());
    let key_1 = fs::read(out.join("d-001").join(PKEY)).unwrap();
    assert_eq!(journaled(&out).len(), 200);
    // Other arguments: refused, naming the journal and what differs.
    let run = issue(
        &pki,
        &out,
        &["--count", "250", "--id-prefix", "d-", "--days", "10"],
    );
    run.code(1)
        .stderr_has(".sota-stage-devices.journal` is the journal of an interrupted run with other arguments (they differ in: days)")
        .stderr_has("run that command again to finish it, or give --force");
    issue(&pki, &out, &["--count", "251", "--id-prefix", "d-"])
        .code(1)
        .stderr_has("(they differ in: device ids)");
    assert!(!out.join("d-201").exists());
    // The same command finishes, keeping the first batch.
    fs::remove_dir_all(out.join("d-250")).unwrap();
    issue(&pki, &out, &count)
        .success()
        .stderr_has("issued 50 device certificates (ec-p256) in `")
        .stderr_has("; 200 more were issued by the interrupted run it finished");
    assert_eq!(fs::read(out.join("d-001").join(PKEY)).unwrap(), key_1);
    assert!(!out.join(".sota-stage-devices.journal").exists());
    let csv = fs::read_to_string(out.join("devices.csv")).unwrap();
    assert_eq!(csv.lines().count(), 251);
    // Run again (without --force), it is done: nothing is replaced.
    issue(&pki, &out, &count[..4])
        .success()
        .stderr_has("all 250 device certificates were issued already");
    assert_eq!(fs::read(out.join("d-001").join(PKEY)).unwrap(), key_1);
}

#[test]
fn a_journal_that_is_not_ours_is_refused_without_being_held_whole() {
    let (dir, pki) = fleet();
    let out = dir.join("out");
    // A real journal: the second batch cannot be written, the first
    // stays, journaled.
    in_the_way(&out, "j-201");
    let count = ["--count", "201", "--id-prefix", "j-"];
    issue(&pki, &out, &[&count[..], &["--force"]].concat()).code(1);
    let journal = out.join(".sota-stage-devices.journal");
    let text = fs::read_to_string(&journal).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().to_string();
    let device = lines.next().unwrap().to_string();
    assert!(device.contains("\"id\":\"j-001\""), "{device}");
    fs::remove_dir_all(out.join("j-201")).unwrap();
    let damaged = "the journal of an interrupted run is damaged: give --force to issue every bundle anew, or use another --out folder";
    // A line longer than any of ours (here the first, with no newline in
    // its 1 MiB), refused by its length, not parsed.
    fs::write(&journal, vec![b'{'; 1 << 20]).unwrap();
    issue(&pki, &out, &count)
        .code(1)
        .stderr_has(
            ".sota-stage-devices.journal` line 1: longer than 65536 bytes, not a line of ours; ",
        )
        .stderr_has(damaged);
    // The same after the header.
    let long = format!("{header}\n{}\n", "x".repeat(70_000));
    fs::write(&journal, long).unwrap();
    issue(&pki, &out, &count)
        .code(1)
        .stderr_has("` line 2: longer than 65536 bytes, not a line of ours; ");
    // More devices than a run issues.
    let mut many = format!("{header}\n");
    for i in 0..=100_000 {
        many.push_str(&device.replace("\"id\":\"j-001\"", &format!("\"id\":\"x-{i}\"")));
        many.push('\n');
    }
    fs::write(&journal, many).unwrap();
    issue(&pki, &out, &count)
        .code(1)
        .stderr_has("` line 100002: more than 100000 devices, more than a run issues; ")
        .stderr_has(damaged);
    // --force starts over, as the message says.
    issue(&pki, &out, &[&count[..], &["--force"]].concat()).success();
    assert!(!journal.exists());
}
