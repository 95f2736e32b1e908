//! A user's template with hostile values: the first byte picks the method
//! (bits 0-1), which built-in template the text replaces (bits 2-3) and
//! whether a hardware ID is given (bit 4); the rest is split at NUL bytes
//! into the template text, then the values: p12 password, PKCS#11 module,
//! PIN, the three object IDs and the hardware ID. Values are put into the
//! options as they come, without the command line's checks, so that the
//! dialect helpers alone stand between them and the fragment.
//!
//! Every fragment that renders has passed the TOML and lint checks inside
//! `render`. A refusal must not quote the password or the PIN: when its
//! message holds one, the same run with each secret one character longer
//! must not hold the longer one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sota_stage::plan::fragments;
use sota_stage::plan::methods::Method;
use sota_stage::plan::options::{FragmentOptions, HardwareId, Hsm, ReportConfig};
use sota_stage::plan::render::{Templates, BUILT_IN};
use sota_stage::secret::Secret;

struct Input<'a> {
    method: Method,
    template: &'a str,
    with_hardware_id: bool,
    text: String,
    values: Vec<String>,
}

fn value(values: &[String], i: usize, default: &str) -> String {
    values
        .get(i)
        .cloned()
        .unwrap_or_else(|| default.to_string())
}

/// Renders; the error's message when it fails.
fn render(input: &Input<'_>, password: &str, pin: &str) -> Result<(), String> {
    let templates = Templates::with_overrides([(
        input.template.to_string(),
        format!("fuzz/{}", input.template),
        input.text.clone(),
    )])?;
    let v = &input.values;
    let opts = FragmentOptions {
        method: input.method,
        hardware_id: input
            .with_hardware_id
            .then(|| HardwareId::parse("fuzz-ecu").ok())
            .flatten(),
        p12_password: Secret::new(password.to_string()),
        hsm: Hsm {
            module: value(v, 1, "/usr/lib/softhsm/libsofthsm2.so"),
            pin: Secret::new(pin.to_string()),
            tls_cert_id: value(v, 3, "01"),
            tls_key_id: value(v, 4, "02"),
            uptane_key_id: value(v, 5, "03"),
            cert_from_file: input.with_hardware_id,
        },
        report_config: ReportConfig::Auto,
    };
    let mut out = fragments::fragments(&opts, &templates).map_err(|e| e.to_string())?;
    // The hardware ID's template with a hostile ID, as the checks would
    // refuse it on the command line.
    if let Some(id) = v.get(6) {
        if let Ok(id) = HardwareId::parse(id) {
            out.push(fragments::hardware_id_fragment(&id, &templates).map_err(|e| e.to_string())?);
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    let mut parts = rest.split(|&b| b == 0);
    let text = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let values: Vec<String> = parts
        .take(7)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    let input = Input {
        method: Method::ALL[usize::from(choice & 3) % Method::ALL.len()],
        template: BUILT_IN[usize::from(choice >> 2 & 3)].0,
        with_hardware_id: choice & 0x10 != 0,
        text,
        values,
    };
    let password = value(&input.values, 0, "");
    let pin = value(&input.values, 2, "1234");
    let Err(message) = render(&input, &password, &pin) else {
        return;
    };
    // A leak: the message changes with the secret. Run again with each
    // secret followed by a snowman (no control character, quote, `\`,
    // `&` or space: every helper judges it as before); the message leaks
    // if it then holds the longer secret, which the template does not.
    let longer = |s: &str| format!("{s}\u{2603}");
    let (password2, pin2) = (longer(&password), longer(&pin));
    for (secret, secret2) in [(&password, &password2), (&pin, &pin2)] {
        if secret.chars().count() >= 6 && message.contains(secret.as_str()) {
            let again = render(&input, &password2, &pin2).err().unwrap_or_default();
            assert!(
                !again.contains(secret2.as_str()) || input.text.contains(secret2.as_str()),
                "a refusal quotes a secret value: {again}"
            );
        }
    }
});
