//! Static deltas: `deltas/<2>/<rest>/{superblock,0,1,…}`. A part is one
//! byte of compression (`0` none, `x` xz: `ostree-repo-static-delta-core.c`)
//! then `(a(uuu)aa(ayay)ayay)`: modes, xattrs, the raw data (whole file
//! contents the operations copy out) and the operations. The raw data is
//! searched whole by the caller, after decoding; the GVariant inside is
//! not parsed.

use std::io::{self, Read};
use std::path::Path;

use super::gvariant::bad;
use crate::audit::decode::Codec;

/// The most digits a part's file name has (ostree numbers them from 0).
const MAX_PART_DIGITS: usize = 10;

/// Whether `path` (relative to the repository or not) is a delta part:
/// a file named by digits, three levels under a `deltas` folder.
pub fn is_delta_part(path: &Path) -> bool {
    let mut up = path.iter().rev();
    let (Some(name), Some(_rest), Some(_two), Some(deltas)) =
        (up.next(), up.next(), up.next(), up.next())
    else {
        return false;
    };
    let name = name.as_encoded_bytes();
    deltas == "deltas"
        && !name.is_empty()
        && name.len() <= MAX_PART_DIGITS
        && name.iter().all(u8::is_ascii_digit)
}

/// Reads a part's compression byte, leaving `src` at the part's payload:
/// `None` when it is stored as it is, `Some(Codec::Xz)` when it is xz.
/// Any other byte (ostree knows no other) is an `Err`.
pub fn delta_part(src: &mut dyn Read) -> io::Result<Option<Codec>> {
    let mut kind = [0u8; 1];
    src.read_exact(&mut kind).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            bad("delta part: empty")
        } else {
            e
        }
    })?;
    match kind {
        [b'0'] => Ok(None),
        [b'x'] => Ok(Some(Codec::Xz)),
        _ => Err(bad("delta part: unknown compression type")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_told_by_place_and_compression_byte() {
        assert!(is_delta_part(Path::new("repo/deltas/M4/Q9W0gX/0")));
        assert!(is_delta_part(Path::new("deltas/M4/Q9W0gX/12")));
        for not in [
            "repo/deltas/M4/Q9W0gX/superblock",
            "repo/deltas/M4/0",
            "repo/objects/M4/Q9W0gX/0",
            "deltas/M4/Q9W0gX/12345678901",
        ] {
            assert!(!is_delta_part(Path::new(not)), "{not}");
        }
        assert_eq!(delta_part(&mut &b"0abc"[..]).unwrap(), None);
        assert_eq!(delta_part(&mut &b"x\xfd7zXZ"[..]).unwrap(), Some(Codec::Xz));
        assert!(delta_part(&mut &b""[..]).is_err());
        assert!(delta_part(&mut &b"g"[..]).is_err());
    }
}
