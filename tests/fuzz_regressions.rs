//! Every input that ever made a fuzz target fail (a panic, a slow input, too
//! much memory), kept under `tests/fuzz_regressions/<target>/` and run here
//! through the same calls as `fuzz/fuzz_targets/<target>.rs`, with the
//! stable toolchain: none may panic, and each must finish well within the
//! fuzzing limit of 1 s (checked loosely: 10 s, an unoptimised build on a
//! loaded machine). docs/fuzzing.md lists them.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use sota_stage::checks::{self, Context, Hints};
use sota_stage::commands::inspect;
use sota_stage::crypto::{garage_keys, pkcs12, private_key, x509};
use sota_stage::intake::archive::{self, Limits};
use sota_stage::plan::manifest::Manifest;
use sota_stage::report::Format;
use sota_stage::secret::Secret;

const NOW: i64 = 1_767_225_600;
const HINTS: Hints = Hints {
    p12_password: "give the right one",
    unknown: "what to do",
    allow_http: "allow it",
};

/// The inputs kept for `target`, by file name.
fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_regressions")
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Vec<u8>)> = entries
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

fn each(target: &str, run: impl Fn(&[u8])) {
    for (name, data) in inputs(target) {
        let start = Instant::now();
        run(&data);
        let took = start.elapsed();
        assert!(
            took < Duration::from_secs(10),
            "{target}/{name} took {took:?}"
        );
    }
}

#[test]
fn archive() {
    each("archive", |data| {
        let Ok(archive) = archive::parse(data, &Limits::default()) else {
            return;
        };
        let password = Secret::new(String::new());
        let ctx = Context {
            p12_password: &password,
            allow_http: false,
            now: NOW,
            hints: &HINTS,
        };
        let findings = checks::check_archive(&archive, &ctx);
        for format in [Format::Text, Format::Json] {
            inspect::report("credentials.zip", &archive, &findings, format);
        }
    });
}

#[test]
fn pkcs12() {
    each("pkcs12", |data| {
        let Some((_, der)) = data.split_first() else {
            return;
        };
        let _ = pkcs12::open(der, &Secret::new(String::new()));
    });
}

#[test]
fn pem_x509() {
    each("pem_x509", |data| {
        let _ = x509::parse_pem_certificates(data);
        let _ = x509::parse_der(data);
        let _ = private_key::parse_private_key_pem(data);
        let _ = private_key::PrivateKey::from_pkcs8_der(data);
        let _ = private_key::PrivateKey::from_sec1_der(data);
        let _ = private_key::PrivateKey::from_pkcs1_der(data);
    });
}

#[test]
fn garage_keys() {
    each("garage_keys", |data| {
        let _ = garage_keys::parse_public(data);
        let _ = garage_keys::parse_private(data);
    });
}

#[test]
fn manifest() {
    each("manifest", |data| {
        if let Ok(m) = Manifest::parse("manifest.json", data) {
            assert_eq!(Manifest::parse("m", m.to_json().as_bytes()).unwrap(), m);
        }
    });
}
