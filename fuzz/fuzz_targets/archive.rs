//! A credentials archive, bytes to report: intake (`archive::parse` with
//! the default limits), every content check with a fixed context (the empty
//! OTA Connect password, plain http refused, a fixed time), and `inspect`'s
//! text and JSON reports (`shared::inspect_archive`).
#![no_main]

mod shared;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(json) = shared::inspect_archive(data) {
        // The JSON report is always JSON.
        assert!(serde_json::from_str::<serde_json::Value>(&json).is_ok());
    }
});
