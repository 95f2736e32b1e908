//! One file of an image, bytes to findings: `audit`'s scanner with every
//! container and decoder it reads (tar, cpio, ar, rpm, zip; gzip, zlib,
//! bzip2, xz, lzma, lz4, zstd), nested, under limits small enough for the
//! fuzzer's 1 s and 256 MiB. Looks for panics, hangs and memory beyond the
//! bounds; a finding never holds the secret.
#![no_main]

mod shared;

use libfuzzer_sys::fuzz_target;
use sota_stage::audit::scan::{Place, Scanner, Shared};
use sota_stage::audit::Needles;
use sota_stage::digest::sha256_hex;
use sota_stage::intake::archive::{Archive, Entry};

const SECRET: &str = "fuzz-test-client-secret-4242";

fn needles() -> Needles {
    let data = format!(
        r#"{{"oauth2":{{"server":"https://a.example.test","client_id":"x","client_secret":"{SECRET}"}}}}"#
    )
    .into_bytes();
    let archive = Archive {
        sha256: sha256_hex(b"not the archive"),
        entries: vec![Entry {
            name: "treehub.json".into(),
            sha256: sha256_hex(&data),
            data,
        }],
        directories: Vec::new(),
    };
    Needles::from_archive(&archive, 1000)
}

fuzz_target!(|data: &[u8]| {
    let needles = needles();
    let limits = shared::audit_limits();
    let shared = Shared::default();
    let mut scanner = Scanner::new(&needles, &limits, &shared);
    scanner.reader(&Place::file("f".into()), &mut &data[..], data.len() as u64);
    for f in &scanner.findings {
        assert!(!f.message.contains(SECRET) && !f.path.contains(SECRET));
        assert!(!f.member.as_deref().unwrap_or("").contains(SECRET));
    }
});
