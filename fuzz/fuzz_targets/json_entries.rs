//! The JSON and text entries of a credentials archive, one at a time,
//! through the same checks `inspect` runs: the first byte picks the entry's
//! name (treehub.json, root.json, director.root.json, targets.pub,
//! targets.sec, provision.json, the URL files, server_ca.pem) and whether a
//! client_auth.p12 comes with it; the rest is the entry's content. The
//! archive is built in memory, so no zip is in the way. treehub.json's
//! check and the JSON budget are also called directly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sota_stage::checks::{self, treehub, Context, Hints};
use sota_stage::commands::inspect;
use sota_stage::digest::sha256_hex;
use sota_stage::intake::archive::{Archive, Entry};
use sota_stage::report::Format;
use sota_stage::secret::Secret;

const NOW: i64 = 1_767_225_600;

const NAMES: [&str; 11] = [
    "treehub.json",
    "root.json",
    "director.root.json",
    "targets.pub",
    "targets.sec",
    "provision.json",
    "autoprov.url",
    "api_gateway.url",
    "tufrepo.url",
    "server_ca.pem",
    "unknown.json",
];

const HINTS: Hints = Hints {
    p12_password: "give the right one",
    unknown: "what to do",
    allow_http: "allow it",
};

fn entry(name: &str, data: &[u8]) -> Entry {
    Entry {
        name: name.to_string(),
        data: data.to_vec(),
        sha256: sha256_hex(data),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&choice, content)) = data.split_first() else {
        return;
    };
    let name = NAMES[usize::from(choice & 0x3f) % NAMES.len()];
    let with_client_auth = choice & 0x80 != 0;

    if name == "treehub.json" {
        let _ = treehub::check(content, with_client_auth);
    }
    let _ = sota_stage::json::from_slice(content);

    let mut entries = vec![entry(name, content)];
    if with_client_auth {
        // Not a real bundle: its presence is what treehub.json's check reads.
        entries.push(entry("client_auth.p12", b"not a p12"));
    }
    let archive = Archive {
        sha256: sha256_hex(data),
        entries,
        directories: Vec::new(),
    };
    let password = Secret::new(String::new());
    let ctx = Context {
        p12_password: &password,
        allow_http: choice & 0x40 != 0,
        now: NOW,
        hints: &HINTS,
    };
    let findings = checks::check_archive(&archive, &ctx);
    for format in [Format::Text, Format::Json] {
        let _ = inspect::report("credentials.zip", &archive, &findings, format);
    }
});
