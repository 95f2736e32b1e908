//! garage-sign's key JSON (`targets.pub`, `targets.sec`): the whole input
//! is read as each; when it holds a NUL byte, the part before it is the
//! public key and the part after it the private one, and they are matched.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sota_stage::crypto::garage_keys::{matches, parse_private, parse_public};

fuzz_target!(|data: &[u8]| {
    if let Ok(key) = parse_public(data) {
        let _ = format!("{key} {}", key.description());
    }
    if let Ok(key) = parse_private(data) {
        let _ = key.description();
        assert!(matches(key.public(), &key));
    }
    if let Some(nul) = data.iter().position(|&b| b == 0) {
        let (public, private) = (&data[..nul], &data[nul + 1..]);
        if let (Ok(public), Ok(private)) = (parse_public(public), parse_private(private)) {
            let _ = matches(&public, &private);
        }
    }
});
