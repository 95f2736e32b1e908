//! The shared kit for the integration tests: each test builds its own
//! archives and certificates in its own folder and drives the real binary.
//!
//! - [`TestDir`]: a private folder under `CARGO_TARGET_TMPDIR`, removed on
//!   drop unless `KEEP_TEST_DIRS` is set.
//! - [`sota`]: the `sota-stage` binary as a scenario,
//!   `sota(["inspect"]).arg(&zip).run().code(1).stderr_has("..")`, with a
//!   hermetic environment and a panic check on every run.
//! - [`RawZip`]: a hand-written zip writer for the hostile archives the `zip`
//!   crate refuses to write (lying sizes, raw names, symlinks, bombs).
//! - [`Pki`]: CAs, client certificates, PKCS#12 files and garage-sign keys
//!   made with the `openssl` command.
//! - [`Creds`]: a typical credentials.zip, built fluently on top of both.
//! - [`upstream`]: the real sample archives in `shared/fixtures/upstream`.
//!
//! Every integration test file declares `mod common;` and uses only part of
//! the kit: unused helpers and re-exports are expected, hence the allowance.
#![allow(dead_code, unused_imports)]

mod creds;
mod dir;
mod pki;
mod rawzip;
mod snapshot;
mod sota;
mod tree;

pub use creds::{Creds, OAUTH2_CLIENT_ID, OAUTH2_SECRET, ROOT_JSON};
pub use dir::TestDir;
pub use pki::{hex, openssl, openssl_with, Cert, KeyAlg, P12Form, Pki, Validity, CA_UUID};
pub use rawzip::{
    crc32, crc32_of_zeros, deflate_raw, deflate_zeros, RawZip, ZipEntry, MODE_DIR, MODE_FILE,
    MODE_SYMLINK,
};
pub use snapshot::assert_snapshot;
pub use sota::{sota, Run, Sota, HERMETIC_ENV};
pub use tree::{tree, Node};

use std::path::PathBuf;

/// The upstream sample archive `name` from
/// `shared/fixtures/upstream/credentials/`: next to the crate's checkout
/// first, then at the fixed workspace path. Panics when neither exists, so a
/// missing fixture never passes as a skipped test.
#[track_caller]
pub fn upstream(name: &str) -> PathBuf {
    let candidates = [
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/upstream/credentials"),
        PathBuf::from("/work/shared/fixtures/upstream/credentials"),
    ];
    for dir in &candidates {
        let path = dir.join(name);
        if path.is_file() {
            return path;
        }
    }
    panic!(
        "upstream fixture `{name}` not found; looked in:\n  {}\n  {}\n\
         check out the shared fixtures next to the crate",
        candidates[0].display(),
        candidates[1].display()
    );
}
