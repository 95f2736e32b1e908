//! Reading the files an operator names: password and PIN files, device
//! certificates and keys, config fragments for `lint`, manifests for
//! `verify`, templates. Each must be a regular file once links are
//! followed (a FIFO would block the build forever, `/dev/zero` never ends,
//! a folder is a mistake), and each is read with a limit that fits its
//! kind, never more: at most the limit plus one byte is ever held. The
//! command line (`cli/`) and the commands both read through here.

use std::fs::{File, Metadata, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use crate::error::{Error, Result};
use crate::escape::escape;

/// `O_NONBLOCK` on Linux (asm-generic/fcntl.h: 00004000). Opening a FIFO
/// with it returns at once instead of waiting for a writer, so a FIFO put
/// in place of a checked file after the check still cannot hang the build;
/// on a regular file it changes nothing. Written here rather than taken
/// from the `libc` crate, which the tool does not otherwise need.
const O_NONBLOCK: i32 = 0o4000;
/// `O_NOFOLLOW` on Linux (asm-generic/fcntl.h: 00400000).
const O_NOFOLLOW: i32 = 0o400000;

/// What a file is for, and so how large it may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A password or PIN file: one line.
    Secret,
    /// A PEM certificate or key.
    Pem,
    /// An aktualizr config file.
    Config,
    /// A manifest written by `stage --manifest`.
    Manifest,
    /// A handlebars template of `--template-dir`.
    Template,
    /// A list of device ids, one a line.
    DeviceIds,
    /// A certificate signing request (PKCS#10, PEM or DER).
    Csr,
}

impl Kind {
    /// The most bytes a file of this kind may hold: far above any real one.
    pub fn limit(self) -> u64 {
        match self {
            Kind::Secret => 4 * 1024,
            Kind::Pem => 256 * 1024,
            Kind::Config => 1024 * 1024,
            Kind::Manifest => 4 * 1024 * 1024,
            Kind::Template => crate::plan::render::MAX_TEMPLATE_BYTES as u64,
            // 100,000 ids of 64 characters, with room to spare.
            Kind::DeviceIds => 8 * 1024 * 1024,
            Kind::Csr => crate::crypto::csr::MAX_CSR_BYTES,
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Kind::Secret => "a password or PIN file",
            Kind::Pem => "a PEM file",
            Kind::Config => "an aktualizr config file",
            Kind::Manifest => "a manifest",
            Kind::Template => "a template",
            Kind::DeviceIds => "a device id list",
            Kind::Csr => "a certificate signing request",
        }
    }
}

/// Reads the regular file at `path`, refusing anything else and anything
/// over the limit of `kind` (exit 1, naming the file).
pub fn read(path: &Path, kind: Kind) -> Result<Vec<u8>> {
    read_shown(path, path, kind)
}

/// [`read`], naming the file `shown` in messages (`lint --root` prints
/// paths inside the root).
pub fn read_shown(path: &Path, shown: &Path, kind: Kind) -> Result<Vec<u8>> {
    let limit = kind.limit();
    let file = open_regular_shown(path, shown, kind.noun(), "read")?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io("read", shown, e))?;
    if bytes.len() as u64 > limit {
        return Err(Error::Invalid(format!(
            "`{}` is larger than {limit} bytes, too large for {}; give the file the option asks for",
            escaped(shown),
            kind.noun()
        )));
    }
    Ok(bytes)
}

/// Opens `path` for reading if it is a regular file after following links;
/// `what` names what it should be, for the message. Checked before opening
/// (opening a FIFO blocks) and again on the opened file (the path may have
/// changed in between).
pub fn open_regular(path: &Path, what: &str) -> Result<File> {
    open_regular_shown(path, path, what, "open")
}

/// Opens `path` for reading without following a symlink in its last
/// component or waiting on a FIFO: for a file the tool itself staged and
/// just looked at, which may have been swapped since. The caller checks
/// the opened file's type.
pub fn open_no_follow(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(O_NONBLOCK | O_NOFOLLOW)
        .open(path)
}

/// `op` names the operation when the file cannot be found or reached.
fn open_regular_shown(path: &Path, shown: &Path, what: &str, op: &'static str) -> Result<File> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(op, shown, e))?;
    refuse_irregular(shown, &meta, what)?;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(O_NONBLOCK)
        .open(path)
        .map_err(|e| Error::io("open", shown, e))?;
    let meta = file.metadata().map_err(|e| Error::io("read", shown, e))?;
    refuse_irregular(shown, &meta, what)?;
    Ok(file)
}

fn refuse_irregular(path: &Path, meta: &Metadata, what: &str) -> Result<()> {
    if meta.is_file() {
        return Ok(());
    }
    let t = meta.file_type();
    let is = if t.is_dir() {
        "a folder"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    };
    Err(Error::Invalid(format!(
        "`{}` is {is}, not a regular file; give {what}",
        escaped(path)
    )))
}

fn escaped(path: &Path) -> String {
    escape(&path.display().to_string()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_folders_are_refused_before_reading() {
        for (path, is) in [
            ("/dev/zero", "a character device"),
            ("/dev/null", "a character device"),
            ("/", "a folder"),
        ] {
            let e = read(Path::new(path), Kind::Config).expect_err(path);
            assert!(e.to_string().contains(is), "{e}");
            assert_eq!(e.exit_code(), crate::error::EXIT_INVALID);
        }
    }
}
