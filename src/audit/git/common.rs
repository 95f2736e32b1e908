//! What the git reader's parts share: the limits, the object kinds and
//! ids, the errors, and the work budget (a file of its own so that the
//! parts import a sibling, not the module that declares them).

use std::fmt;
use std::io;

use sha1::{Digest, Sha1};

const MIB: u64 = 1024 * 1024;

/// The bounds of reading one repository.
#[derive(Debug, Clone)]
pub struct Limits {
    /// An object (or a delta) larger than this is not read: an `Err` item
    /// names it. 64 MiB.
    pub object_bytes: u64,
    /// Most objects (pack entries and loose files) read, and ids held in
    /// the seen set; the rest is an `Err` item. 1,000,000 (about 40 MiB of
    /// ids and pack indexes).
    pub objects: u64,
    /// Most bytes inflated or built by deltas in the repository, bases
    /// read again included, each zlib stream counted as at least 256
    /// bytes. 16 GiB.
    pub inflated_bytes: u64,
    /// Longest delta chain followed, as git's own maximum. 4095.
    pub delta_depth: u32,
    /// Inflated delta bases kept for later deltas, in bytes (git's
    /// `core.deltaBaseCacheLimit` is 96 MiB); [`paths`] shares it among
    /// the packs. 32 MiB.
    pub base_cache: u64,
    /// Most pack files read. 4096.
    pub packs: usize,
    /// Most refs and reflog entries the path walk starts from. 100,000.
    pub refs: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            object_bytes: 64 * MIB,
            objects: 1_000_000,
            inflated_bytes: 16 * 1024 * MIB,
            delta_depth: 4095,
            base_cache: 32 * MIB,
            packs: 4096,
            refs: 100_000,
        }
    }
}

/// An object's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Blob,
    Tree,
    Commit,
    Tag,
}

impl Kind {
    /// Its name in object headers.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Blob => "blob",
            Kind::Tree => "tree",
            Kind::Commit => "commit",
            Kind::Tag => "tag",
        }
    }

    pub(super) fn from_name(name: &[u8]) -> Option<Kind> {
        match name {
            b"blob" => Some(Kind::Blob),
            b"tree" => Some(Kind::Tree),
            b"commit" => Some(Kind::Commit),
            b"tag" => Some(Kind::Tag),
            _ => None,
        }
    }
}

/// One object of the repository.
#[derive(Clone, PartialEq, Eq)]
pub struct Object {
    /// Computed from the content.
    pub id: [u8; 20],
    pub kind: Kind,
    pub data: Vec<u8>,
}

impl fmt::Debug for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the content: it may be a secret.
        f.debug_struct("Object")
            .field("id", &hex(&self.id))
            .field("kind", &self.kind)
            .field("len", &self.data.len())
            .finish()
    }
}

/// Something of the repository that was not searched, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The object's id when known (a loose object's file name, a pack
    /// entry's `.idx` line).
    pub id: Option<[u8; 20]>,
    /// Where it is: `objects/pack/pack-….pack at offset N`, `objects/xx/…`,
    /// relative to the git folder.
    pub place: String,
    /// A sentence, no repository bytes.
    pub why: String,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.id {
            Some(id) => write!(f, "{} (object {}): {}", self.place, hex(id), self.why),
            None => write!(f, "{}: {}", self.place, self.why),
        }
    }
}

impl std::error::Error for Skipped {}

/// The lowercase hex of an id.
pub fn hex(id: &[u8; 20]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// The id of 40 hex digits (either case), if `text` is one.
pub fn parse_hex(text: &[u8]) -> Option<[u8; 20]> {
    if text.len() != 40 {
        return None;
    }
    let mut id = [0u8; 20];
    for (byte, pair) in id.iter_mut().zip(text.chunks_exact(2)) {
        let digit = |c: u8| (c as char).to_digit(16);
        *byte = u8::try_from(digit(*pair.first()?)? * 16 + digit(*pair.get(1)?)?).ok()?;
    }
    Some(id)
}

/// git's id of an object: SHA-1 of `type len\0` and the content.
pub fn object_id(kind: Kind, data: &[u8]) -> [u8; 20] {
    let mut h = Sha1::new();
    h.update(format!("{} {}\0", kind.name(), data.len()).as_bytes());
    h.update(data);
    h.finalize().into()
}

/// The work done in one repository, against its limits.
#[derive(Debug)]
pub(crate) struct Budget {
    pub(super) inflated: u64,
    pub(super) entries: u64,
    pub(super) max_inflated: u64,
    pub(super) max_entries: u64,
}

impl Budget {
    pub(super) fn new(limits: &Limits) -> Budget {
        Budget {
            inflated: 0,
            entries: 0,
            max_inflated: limits.inflated_bytes,
            max_entries: limits.objects,
        }
    }

    /// Counts `n` bytes inflated; `Err` once over the limit.
    pub(super) fn spend(&mut self, n: u64) -> io::Result<()> {
        self.inflated = self.inflated.saturating_add(n);
        if self.inflated > self.max_inflated {
            return Err(io::Error::other(format!(
                "more than {} MiB inflated in this repository: the rest is not searched",
                self.max_inflated / MIB
            )));
        }
        Ok(())
    }

    /// Counts one object read; `Err` once over the limit.
    pub(super) fn entry(&mut self) -> io::Result<()> {
        self.entries += 1;
        if self.entries > self.max_entries {
            return Err(io::Error::other(format!(
                "more than {} objects in this repository: the rest is not searched",
                self.max_entries
            )));
        }
        Ok(())
    }

    pub(super) fn exhausted(&self) -> bool {
        self.inflated > self.max_inflated || self.entries > self.max_entries
    }
}
