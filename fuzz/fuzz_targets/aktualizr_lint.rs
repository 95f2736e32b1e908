//! aktualizr's config dialect: the parser, the lint rules and the merge
//! (`--explain`), as `sota-stage lint` runs them on files. The first byte
//! chooses the options (bit 0 explain, bit 1 JSON, bit 2 deny warnings);
//! the rest is split at NUL bytes into up to four files applied in order.
//! `rules::lint_text` also reads the whole rest, NULs included.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sota_stage::aktualizr::rules;
use sota_stage::commands::lint::{self, Options};
use sota_stage::report::Format;

fuzz_target!(|data: &[u8]| {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    let _ = rules::lint_text("whole.toml", &String::from_utf8_lossy(rest));

    let files: Vec<(String, Vec<u8>)> = rest
        .splitn(4, |&b| b == 0)
        .enumerate()
        .map(|(i, text)| {
            (
                format!("/usr/lib/sota/conf.d/{i}0-fuzz.toml"),
                text.to_vec(),
            )
        })
        .collect();
    let options = Options {
        explain: choice & 1 != 0,
        format: if choice & 2 != 0 {
            Format::Json
        } else {
            Format::Text
        },
        deny_warnings: choice & 4 != 0,
    };
    if let Ok(out) = lint::check_texts(&files, options) {
        if options.format == Format::Json {
            assert!(serde_json::from_str::<serde_json::Value>(&out.stdout).is_ok());
        }
    }
});
