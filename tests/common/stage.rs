//! Device roots staged by the binary, for the tests that read one back
//! (`audit`, `verify`).

use std::path::Path;

use super::sota::sota;

/// `stage --method shared-cred` of the archive `zip` into the device root
/// `dev`, writing its manifest to `manifest`; fails the test unless the
/// run succeeds.
#[track_caller]
pub fn stage_shared_cred(zip: &Path, dev: &Path, manifest: &Path) {
    sota(["stage", "--method", "shared-cred", "--credentials"])
        .arg(zip)
        .arg("--device-root")
        .arg(dev)
        .arg("--manifest")
        .arg(manifest)
        .run()
        .success();
}
