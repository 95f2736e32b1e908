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

const SECRET: &str = "fuzz-test-client-secret-4242";

fn needles() -> Needles {
    Needles::of_client_secret(SECRET)
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
