//! JSON from credentials archives (`root.json`, `treehub.json`, the
//! garage-sign keys, `provision.json`), parsed into a `serde_json::Value`
//! with a bound on how many values it may hold.
//!
//! A `Value` costs 32 bytes or more per value, so 4 MiB of `[0,0,0,...]`
//! (an entry as large as intake allows) took 74 MB to hold. Real files
//! hold a few dozen values; [`MAX_VALUES`] is far above them.

use serde_json::Value;

/// The most values one JSON file may hold.
pub const MAX_VALUES: usize = 10_000;

/// Why JSON bytes are refused; worded to follow an entry's name.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    #[error("holds more than {MAX_VALUES} JSON values, far more than any credentials file")]
    TooLarge,
    /// serde_json's message gives line and column, never the content.
    #[error("is not valid JSON ({0})")]
    Syntax(#[from] serde_json::Error),
}

/// `serde_json::from_slice`, after a linear count of the values: more than
/// [`MAX_VALUES`] is refused before anything is built.
pub fn from_slice(bytes: &[u8]) -> Result<Value, JsonError> {
    if values_at_most(bytes) > MAX_VALUES {
        return Err(JsonError::TooLarge);
    }
    Ok(serde_json::from_slice(bytes)?)
}

/// An upper bound on the values in `bytes`: the root, and one after each
/// `[`, `,` and `:` outside strings.
fn values_at_most(bytes: &[u8]) -> usize {
    let mut count = 1;
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
        } else {
            match b {
                b'"' => in_string = true,
                b'[' | b',' | b':' => count += 1,
                _ => {}
            }
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_counted_outside_strings() {
        assert_eq!(values_at_most(br#"{"a":[1,2],"b":"x,y:[\",z"}"#), 6);
        assert_eq!(values_at_most(b"0"), 1);
    }

    #[test]
    fn too_many_values_are_refused_before_parsing() {
        let mut fine = b"[0".to_vec();
        fine.extend(b",0".repeat(MAX_VALUES - 2));
        fine.push(b']');
        assert_eq!(
            from_slice(&fine).unwrap().as_array().unwrap().len(),
            MAX_VALUES - 1
        );
        let mut many = b"[0".to_vec();
        many.extend(b",0".repeat(MAX_VALUES));
        many.push(b']');
        let err = from_slice(&many).unwrap_err();
        assert_eq!(
            err.to_string(),
            "holds more than 10000 JSON values, far more than any credentials file"
        );
        assert!(from_slice(b"{").is_err());
    }
}
