//! A budget for the JSON entries (treehub.json, root.json, the garage-sign
//! keys, provision.json) before they become a `serde_json::Value`: a value
//! tree costs tens of bytes per element, so 4 MiB of `[],[],[]` would take
//! some 80 MiB. Real entries hold tens of values; the budget is a thousand
//! times more, and holds `inspect` of any archive far under 64 MiB.

/// The most JSON values an entry may hold.
pub const MAX_VALUES: usize = 100_000;

/// Counts the values of `bytes` (arrays, objects and the commas between
/// elements, outside strings) without building them; refuses more than
/// [`MAX_VALUES`]. Syntax is left to serde_json.
pub fn check_budget(bytes: &[u8]) -> Result<(), String> {
    let mut count: usize = 1;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' | b',' => {
                count += 1;
                if count > MAX_VALUES {
                    return Err(format!(
                        "holds more than {MAX_VALUES} JSON values, far more than any credentials file"
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_counted_outside_strings() {
        assert!(check_budget(br#"{"signed":{"keys":{}},"signatures":[]}"#).is_ok());
        let many = format!("[{}]", vec!["[]"; MAX_VALUES].join(","));
        assert!(check_budget(many.as_bytes()).is_err());
        let in_a_string = format!("[\"{}\"]", ",".repeat(2 * MAX_VALUES));
        assert!(check_budget(in_a_string.as_bytes()).is_ok());
        let escaped_quote = format!("[\"\\\"{}\"]", ",".repeat(2 * MAX_VALUES));
        assert!(check_budget(escaped_quote.as_bytes()).is_ok());
    }
}
