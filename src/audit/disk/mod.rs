//! Disk images read without mounting and without root: the partition
//! table of a raw or `.wic` image, and the file systems the audit searches
//! inside (ext2/3/4 and FAT12/16/32), all over [`ReadAt`] (a partition is a
//! [`crate::audit::source::Slice`] of the image).
//!
//! - [`partitions`]: MBR (with the EBR chain of extended partitions) and
//!   GPT (512- and 4096-byte sectors); each partition told by its content
//!   first (ext superblock, FAT boot sector), its type code second.
//! - [`ext4`]: superblock, group descriptors, inode tables; a walk from
//!   the root directory and each file's data through extents, block maps
//!   or inline data; symlink targets, extended attributes, and the
//!   allocated regular files no directory reaches.
//! - [`vfat`]: boot sector, FAT, directories with long names, each file's
//!   cluster chain.
//! - `common`: what the readers share (an entry's kind, the error of a
//!   damaged structure, little-endian fields).
//!
//! Every image is hostile: no value read from it is used as an index,
//! a size to allocate (beyond a documented cap) or a loop count without a
//! check; every chain and tree is bounded by a count and a visited set, and
//! a damaged structure ends in an `Err` whose message names what is wrong
//! (never the image's bytes).

mod common;
pub(crate) mod ext4;
pub(crate) mod partitions;
pub(crate) mod vfat;

pub use common::Kind;

#[cfg(doc)]
use crate::audit::source::ReadAt;

/// Test images made by the real tools (mkfs.ext4, mkfs.vfat, mcopy,
/// sfdisk) in a scratch folder.
#[cfg(test)]
pub(crate) mod testkit {
    pub use crate::audit::formats::testkit::{scratch, sh, Rng, Scratch};
    use crate::audit::source::Slice;
    use std::collections::BTreeMap;
    use std::path::Path;

    /// The tree an image is made from, written under a folder as it is
    /// described: name -> content (files), or `None` for folders.
    pub struct Tree<'r> {
        root: &'r Path,
        pub files: BTreeMap<String, Option<Vec<u8>>>,
    }

    impl Tree<'_> {
        pub fn new(root: &Path) -> Tree<'_> {
            Tree {
                root,
                files: BTreeMap::new(),
            }
        }

        /// Writes the file `name` (or makes the folder, for `None`).
        pub fn put(&mut self, name: &str, data: Option<Vec<u8>>) {
            let p = self.root.join(name);
            match &data {
                Some(d) => std::fs::write(&p, d).unwrap(),
                None => std::fs::create_dir_all(&p).unwrap(),
            }
            self.files.insert(name.to_owned(), data);
        }
    }

    /// Bytes in memory as a sized source.
    pub fn mem(b: &[u8]) -> Slice<'_, [u8]> {
        Slice {
            source: b,
            start: 0,
            len: b.len() as u64,
        }
    }

    /// Whether the Debian tools these tests drive are installed.
    pub fn have(tool: &str) -> bool {
        ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
            .iter()
            .any(|d| Path::new(d).join(tool).exists())
    }

    /// The test secret planted in the images (a made-up key, not a real
    /// credential).
    pub const SECRET: &[u8] = b"-----BEGIN PRIVATE KEY-----\nTEST-ONLY-disk-reader-secret-0123456789\n-----END PRIVATE KEY-----\n";

    /// Bytes that differ at every offset, so a block read from the wrong
    /// place shows.
    pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
        let mut rng = Rng(seed | 1);
        (0..len).map(|_| rng.next() as u8).collect()
    }

    /// A hostile image: seeded byte flips, zeroed and 0xff runs where the
    /// metadata lives (the first blocks, the inode table, directory
    /// blocks), truncations. Each must end (the walk and every read) with
    /// `Ok` or `Err`, without a panic, within a bounded number of steps.
    pub fn mutate(good: &[u8], rng: &mut Rng, hot: &[std::ops::Range<usize>]) -> Vec<u8> {
        let mut v = good.to_vec();
        let len = v.len();
        let pick = |rng: &mut Rng| -> usize {
            let r = &hot[rng.below(hot.len())];
            r.start + rng.below(r.end.min(len) - r.start)
        };
        match rng.below(5) {
            0 => v.truncate(rng.below(good.len())),
            1 => {
                for _ in 0..1 + rng.below(16) {
                    let at = pick(rng);
                    v[at] = rng.next() as u8;
                }
            }
            2 => {
                let at = pick(rng);
                let end = (at + 1 + rng.below(8)).min(v.len());
                let fill = [0xff, 0, 0x01, 0x80][rng.below(4)];
                v[at..end].fill(fill);
            }
            3 => {
                // A block copied over another (loops: a directory or an
                // extent node pointing at its parent).
                let from = pick(rng) & !1023;
                let to = pick(rng) & !1023;
                let block = v[from..(from + 1024).min(v.len())].to_vec();
                let end = (to + block.len()).min(v.len());
                v[to..end].copy_from_slice(&block[..end - to]);
            }
            _ => {
                for _ in 0..1 + rng.below(4) {
                    let at = rng.below(v.len());
                    v[at] ^= 1 << rng.below(8);
                }
            }
        }
        v
    }
}
