//! What a fuzz target and `tests/fuzz_regressions.rs` both run, so that a
//! kept input goes through the same calls as the fuzzer gave it: each
//! target that has a part here declares `mod shared;`, the test file
//! includes this file by path. Not a target of its own (fuzz/Cargo.toml
//! lists every one).
#![allow(dead_code)]

use sota_stage::audit::Limits as AuditLimits;
use sota_stage::checks::{self, Context, Hints};
use sota_stage::commands::inspect;
use sota_stage::intake::archive::{self, Limits};
use sota_stage::report::Format;
use sota_stage::secret::Secret;

/// 2026-01-01T00:00:00Z: a fixed "now", so that a run repeats.
pub const NOW: i64 = 1_767_225_600;

pub const HINTS: Hints = Hints {
    p12_password: "give the right one",
    unknown: "what to do",
    allow_http: "allow it",
};

/// A credentials archive, bytes to report: intake (`archive::parse` with
/// the default limits), every content check with a fixed context (the
/// empty OTA Connect password, plain http refused, [`NOW`]), and
/// `inspect`'s text and JSON reports; the JSON report's standard output,
/// or `None` for an archive intake refuses.
pub fn inspect_archive(data: &[u8]) -> Option<String> {
    let archive = archive::parse(data, &Limits::default()).ok()?;
    let password = Secret::new(String::new());
    let ctx = Context {
        p12_password: &password,
        allow_http: false,
        now: NOW,
        hints: &HINTS,
    };
    let findings = checks::check_archive(&archive, &ctx);
    inspect::report("credentials.zip", &archive, &findings, Format::Text);
    Some(inspect::report("credentials.zip", &archive, &findings, Format::Json).stdout)
}

/// The audit's limits, small enough for the fuzzer's 1 s and 256 MiB.
pub fn audit_limits() -> AuditLimits {
    const MIB: u64 = 1024 * 1024;
    AuditLimits {
        expanded_bytes: 8 * MIB,
        run_bytes: 16 * MIB,
        memory: 24 * MIB,
        dictionary: 16 * MIB,
        container_bytes: 4 * MIB,
        threads: 1,
        ..AuditLimits::default()
    }
}
