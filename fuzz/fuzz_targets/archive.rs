//! A credentials archive, bytes to report: intake (`archive::parse` with
//! the default limits), every content check with a fixed context (the empty
//! OTA Connect password, plain http refused, a fixed time), and `inspect`'s
//! text and JSON reports.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sota_stage::checks::{self, Context, Hints};
use sota_stage::commands::inspect;
use sota_stage::intake::archive::{self, Limits};
use sota_stage::report::Format;
use sota_stage::secret::Secret;

/// 2026-01-01T00:00:00Z: a fixed "now", so that a run repeats.
const NOW: i64 = 1_767_225_600;

const HINTS: Hints = Hints {
    p12_password: "give the right one",
    unknown: "what to do",
    allow_http: "allow it",
};

fuzz_target!(|data: &[u8]| {
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
        let out = inspect::report("credentials.zip", &archive, &findings, format);
        if format == Format::Json {
            // The JSON report is always JSON.
            assert!(serde_json::from_str::<serde_json::Value>(&out.stdout).is_ok());
        }
    }
});
