//! OSTree's objects: their names in `objects/`, the `.filez` content
//! header, and the metadata objects that name content (commit, dirtree,
//! dirmeta). Formats from `ostree-core.h` and `ostree-core-private.h`
//! (ostree 2022.7, checked on repositories Debian's `ostree` made).

use std::io::{self, Read};
use std::path::Path;

use super::gvariant::{self as gv, bad, U32, U64, VAR1, VAR8};

/// The most bytes a `.filez` header may declare (ostree's own are a few
/// dozen bytes plus the extended attributes).
pub const MAX_FILEZ_HEADER: u32 = 1 << 20;
/// The most bytes a metadata object may hold (`OSTREE_MAX_METADATA_SIZE`
/// is 10 MiB).
pub const MAX_METADATA: u64 = 10 << 20;
/// The most extended attributes one header or dirmeta may list.
pub const MAX_XATTRS: usize = 4096;
/// The most entries (files plus subfolders) one dirtree may list.
pub const MAX_DIRTREE_ENTRIES: usize = 1 << 20;

/// What an object is, told by its file name's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectType {
    /// `.file` (bare modes): the content as a plain file.
    File,
    /// `.filez` (archive): header, then raw deflate.
    Filez,
    DirTree,
    DirMeta,
    Commit,
    /// `commit-tombstone`, `commitmeta`, `payload-link`, `file-xattrs`,
    /// `file-xattrs-link`: no names, searched as they are.
    Other,
}

/// The checksum and type of an object file, from its path
/// (`…/objects/<2 hex>/<62 hex>.<type>`); `None` for anything else.
pub fn object_id(path: &Path) -> Option<([u8; 32], ObjectType)> {
    let name = path.file_name()?.to_str()?;
    let dir = path.parent()?.file_name()?.to_str()?;
    let (rest, ext) = name.split_once('.')?;
    if dir.len() != 2 || rest.len() != 62 {
        return None;
    }
    let kind = match ext {
        "file" => ObjectType::File,
        "filez" => ObjectType::Filez,
        "dirtree" => ObjectType::DirTree,
        "dirmeta" => ObjectType::DirMeta,
        "commit" => ObjectType::Commit,
        "commit-tombstone" | "commitmeta" | "payload-link" | "file-xattrs" | "file-xattrs-link" => {
            ObjectType::Other
        }
        _ => return None,
    };
    let mut hex = String::with_capacity(64);
    hex.push_str(dir);
    hex.push_str(rest);
    Some((parse_hex(hex.as_bytes())?, kind))
}

/// 64 hex digits (either case) as 32 bytes.
pub fn parse_hex(text: &[u8]) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        let digit = |c: u8| char::from(c).to_digit(16);
        let (high, low) = match pair {
            [h, l] => (digit(*h)?, digit(*l)?),
            _ => return None,
        };
        *byte = u8::try_from(high * 16 + low).ok()?;
    }
    Some(out)
}

/// 32 bytes as 64 lowercase hex digits.
pub fn hex(sum: &[u8; 32]) -> String {
    sum.iter().map(|b| format!("{b:02x}")).collect()
}

/// The header of a `.filez` object.
#[derive(Clone, PartialEq, Eq)]
pub struct FilezHeader {
    /// The uncompressed size of the content (a claim: the lead's decoder
    /// bounds decoding, not this).
    pub size: u64,
    pub uid: u32,
    pub gid: u32,
    /// `st_mode`: type and permissions.
    pub mode: u32,
    pub rdev: u32,
    /// A symlink's target (empty for a regular file).
    pub symlink_target: Vec<u8>,
    /// Extended attributes: name (without its NUL), value.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl FilezHeader {
    /// A symlink has no compressed data after its header.
    pub fn is_symlink(&self) -> bool {
        self.mode & 0o170000 == 0o120000
    }
}

impl std::fmt::Debug for FilezHeader {
    /// Sizes and modes only: a target or xattr may be a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FilezHeader")
            .field("size", &self.size)
            .field("mode", &format_args!("{:o}", self.mode))
            .field("symlink_target_len", &self.symlink_target.len())
            .field("xattrs", &self.xattrs.len())
            .finish_non_exhaustive()
    }
}

/// Reads a `.filez` header: BE u32 header length (non-zero, at most
/// [`MAX_FILEZ_HEADER`]), 4 padding bytes, then that many bytes of
/// `(tuuuusa(ayay))`; leaves `src` at the raw deflate data (none for a
/// symlink). The padding, `rdev` and the mode's type are not checked as
/// ostree does: a damaged header must not hide the content behind it.
pub fn filez(src: &mut dyn Read) -> io::Result<FilezHeader> {
    let mut lead = [0u8; 8];
    src.read_exact(&mut lead)
        .map_err(|e| eof(e, "filez: truncated header"))?;
    let [a, b, c, d, ..] = lead;
    let len = u32::from_be_bytes([a, b, c, d]);
    if len == 0 || len > MAX_FILEZ_HEADER {
        return Err(bad("filez: header length out of range"));
    }
    let mut header = Vec::new();
    src.take(u64::from(len)).read_to_end(&mut header)?;
    if header.len() as u64 != u64::from(len) {
        return Err(bad("filez: truncated header"));
    }
    let [size, uid, gid, mode, rdev, target, xattrs] = gv::tuple(
        &header,
        [U64, U32, U32, U32, U32, VAR1, VAR1],
        "filez header",
    )?;
    Ok(FilezHeader {
        size: gv::u64_be(size)?,
        uid: gv::u32_be(uid)?,
        gid: gv::u32_be(gid)?,
        mode: gv::u32_be(mode)?,
        rdev: gv::u32_be(rdev)?,
        symlink_target: gv::string(target, "filez symlink target")?.to_vec(),
        xattrs: gv::xattrs(xattrs, MAX_XATTRS)?,
    })
}

fn eof(e: io::Error, what: &str) -> io::Error {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        bad(what)
    } else {
        e
    }
}

/// What naming needs of a commit `(a{sv}aya(say)sstayay)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// `None` for a root commit.
    pub parent: Option<[u8; 32]>,
    pub subject: Vec<u8>,
    pub root_tree: [u8; 32],
    pub root_meta: [u8; 32],
}

pub fn commit(data: &[u8]) -> io::Result<Commit> {
    let [_meta, parent, _related, subject, _body, _time, tree, meta] = gv::tuple(
        data,
        [VAR8, VAR1, VAR1, VAR1, VAR1, U64, VAR1, VAR1],
        "commit",
    )?;
    Ok(Commit {
        parent: match parent {
            [] => None,
            p => Some(gv::checksum(p, "commit parent")?),
        },
        subject: gv::string(subject, "commit subject")?.to_vec(),
        root_tree: gv::checksum(tree, "commit root dirtree")?,
        root_meta: gv::checksum(meta, "commit root dirmeta")?,
    })
}

/// A dirtree `(a(say)a(sayay))`: names as stored (unchecked: a hostile
/// repository may hold `..`, `/` or non-UTF-8).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DirTree<'a> {
    /// Name, content checksum.
    pub files: Vec<(&'a [u8], [u8; 32])>,
    /// Name, dirtree checksum, dirmeta checksum.
    pub dirs: Vec<(&'a [u8], [u8; 32], [u8; 32])>,
}

/// Reads a dirtree: at most [`MAX_DIRTREE_ENTRIES`] files and as many
/// folders.
pub fn dirtree(data: &[u8]) -> io::Result<DirTree<'_>> {
    let [files, dirs] = gv::tuple(data, [VAR1, VAR1], "dirtree")?;
    let mut out = DirTree::default();
    for entry in gv::var_array(files, 1, MAX_DIRTREE_ENTRIES, "dirtree files")? {
        let [name, sum] = gv::tuple(entry, [VAR1, VAR1], "dirtree file")?;
        out.files.push((
            gv::string(name, "dirtree file name")?,
            gv::checksum(sum, "dirtree file checksum")?,
        ));
    }
    for entry in gv::var_array(dirs, 1, MAX_DIRTREE_ENTRIES, "dirtree folders")? {
        let [name, tree, meta] = gv::tuple(entry, [VAR1, VAR1, VAR1], "dirtree folder")?;
        out.dirs.push((
            gv::string(name, "dirtree folder name")?,
            gv::checksum(tree, "dirtree folder checksum")?,
            gv::checksum(meta, "dirtree folder dirmeta")?,
        ));
    }
    Ok(out)
}

/// A dirmeta `(uuua(ayay))`; also bare-user's `user.ostreemeta` xattr.
#[derive(Clone, PartialEq, Eq)]
pub struct DirMeta {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for DirMeta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirMeta")
            .field("uid", &self.uid)
            .field("gid", &self.gid)
            .field("mode", &format_args!("{:o}", self.mode))
            .field("xattrs", &self.xattrs.len())
            .finish()
    }
}

pub fn dirmeta(data: &[u8]) -> io::Result<DirMeta> {
    let [uid, gid, mode, xattrs] = gv::tuple(data, [U32, U32, U32, VAR1], "dirmeta")?;
    Ok(DirMeta {
        uid: gv::u32_be(uid)?,
        gid: gv::u32_be(gid)?,
        mode: gv::u32_be(mode)?,
        xattrs: gv::xattrs(xattrs, MAX_XATTRS)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_give_checksum_and_type() {
        let sum = "44f778e59f0a4748d6b0c90a47347212a231c4ad1e8f7ea5c5dffc7749153a6b";
        let path = format!("repo/objects/{}/{}.filez", &sum[..2], &sum[2..]);
        let (id, kind) = object_id(Path::new(&path)).unwrap();
        assert_eq!((hex(&id).as_str(), kind), (sum, ObjectType::Filez));
        for wrong in [
            format!("objects/{}/{}.filez", &sum[..3], &sum[3..]),
            format!("objects/{}/{}.zip", &sum[..2], &sum[2..]),
            format!("objects/{}/{}g.file", &sum[..2], &sum[2..63]),
            format!("objects/{}/{}", &sum[..2], &sum[2..]),
        ] {
            assert_eq!(object_id(Path::new(&wrong)), None, "{wrong}");
        }
    }

    #[test]
    fn a_filez_header_is_bounded_and_must_be_whole() {
        for data in [
            &b"\0\0\0\0\0\0\0\0"[..],
            b"\0\x10\0\x01\0\0\0\0",
            b"\0\0\0\x1a\0\0\0\0short",
            b"\0\0\0",
        ] {
            assert!(filez(&mut &data[..]).is_err());
        }
    }
}
