//! The one kit of the integration tests: each test builds its own archives
//! and certificates in its own folder and drives the real binary.
//!
//! - [`TestDir`]: a private folder under `CARGO_TARGET_TMPDIR`, removed on
//!   drop unless `KEEP_TEST_DIRS` is set.
//! - [`sota`]: the `sota-stage` binary as a scenario,
//!   `sota(["inspect"]).arg(&zip).run().code(1).stderr_is("..")`, with a
//!   hermetic environment, a timeout and a panic check on every run;
//!   [`Cmd`] runs another program (bitbake) the same way.
//! - [`upstream`], [`upstream_config`]: the real samples in
//!   `../shared/fixtures/upstream`, found from `CARGO_MANIFEST_DIR`.
//! - [`tree`]: a whole tree read back (mode, mtime, bytes), on `walkdir`.
//! - [`RawZip`]: a hand-written zip writer for the hostile archives the `zip`
//!   crate refuses to write (lying sizes, raw names, symlinks, bombs).
//! - [`Pki`]: CAs, client certificates, PKCS#12 files and garage-sign keys
//!   made with the `openssl` command ([`openssl`]).
//! - [`Creds`]: a typical credentials.zip, built fluently on top of both.
//! - [`assert_snapshot`]: files under `tests/snapshots/`.
//! - [`staged`]: what `stage` wrote, read back (roots, trees, zips).
//! - [`audit`]: images and repositories made with the real tools for the
//!   `audit` tests; [`device_certs`]: the `device-certs` tests' run, record
//!   and refusals; [`softhsm`]: a SoftHSM token folder of a test's own;
//!   `harness`: the BitBake the harness tests drive (`BITBAKE`), a build
//!   folder of stand-in layers and what a run did; [`bitbake_checks`]: the
//!   checks the harness tests share; [`oe`]: real OE-core build folders.
//!
//! `dir.rs`, `fixtures.rs`, `openssl.rs` and `tree.rs` serve the unit tests
//! too (`src/test_support.rs` includes them): keep them free of `super::`.
//!
//! Every integration test file declares `mod common;` and uses only part of
//! the kit: unused helpers and re-exports are expected, hence the allowance.
#![allow(dead_code, unused_imports)]

pub mod audit;
pub mod bitbake_checks;
mod creds;
pub mod device_certs;
mod dir;
mod fixtures;
mod harness;
pub mod oe;
mod openssl;
mod pki;
mod rawzip;
mod snapshot;
pub mod softhsm;
mod sota;
pub mod staged;
mod tree;

pub use audit::{sh, tool, Audit, Found, Setup};
pub use creds::{Creds, HOST_FILES, HSM_OPTIONS, OAUTH2_CLIENT_ID, OAUTH2_SECRET, ROOT_JSON};
pub use dir::TestDir;
pub use fixtures::{upstream, upstream_config};
pub use harness::{bitbake, repo, run_bitbake, write_dated, zstd_decompress, Build, Outcome};
pub use openssl::{csr, ec_p256_key, openssl, openssl_status};
pub use pki::{hex, Cert, KeyAlg, P12Form, Pki, Validity, CA_UUID};
pub use rawzip::{
    crc32, crc32_of_zeros, deflate_raw, deflate_zeros, RawZip, ZipEntry, MODE_DIR, MODE_FILE,
    MODE_SYMLINK,
};
pub use snapshot::assert_snapshot;
pub use sota::{sota, Cmd, Run};
pub use tree::{copy_tree, tree, walk, Node};
