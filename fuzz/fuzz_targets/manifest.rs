//! `sota-stage verify`'s manifest reader: `Manifest::parse` on any bytes.
//! A manifest that parses is written out again and must read back the
//! same, and its sha256sum lines are built for both roots.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sota_stage::intake::catalogue::Side;
use sota_stage::plan::manifest::Manifest;

fuzz_target!(|data: &[u8]| {
    let Ok(manifest) = Manifest::parse("manifest.json", data) else {
        return;
    };
    let json = manifest.to_json();
    let again = Manifest::parse("manifest.json", json.as_bytes());
    assert!(again.is_ok_and(|m| m == manifest));
    for side in [Side::Device, Side::Host] {
        let _ = manifest.sha256sum(side, "/fuzz");
    }
});
