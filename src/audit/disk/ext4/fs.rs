//! The file system itself: the superblock, the group descriptors, the
//! inodes (read through the metadata cache), symlink targets and extended
//! attributes.

use std::cell::RefCell;
use std::io::{self, Read};

use super::cache::MetaCache;
use crate::audit::disk::common::{bad, le16, le32, Kind};
use crate::audit::source::ReadAt;

const SUPERBLOCK_AT: u64 = 1024;
const SUPERBLOCK_LEN: usize = 1024;
const MAGIC: u16 = 0xEF53;
/// The root directory's inode.
pub const ROOT: u32 = 2;

const INCOMPAT_COMPRESSION: u32 = 0x1;
pub(super) const INCOMPAT_FILETYPE: u32 = 0x2;
const INCOMPAT_META_BG: u32 = 0x10;
const INCOMPAT_64BIT: u32 = 0x80;
const RO_COMPAT_SPARSE_SUPER: u32 = 0x1;
pub(super) const RO_COMPAT_GDT_CSUM: u32 = 0x10;
pub(super) const RO_COMPAT_METADATA_CSUM: u32 = 0x400;

pub(super) const FL_EXTENTS: u32 = 0x8_0000;
pub(super) const FL_INLINE_DATA: u32 = 0x1000_0000;

const S_IFMT: u16 = 0xF000;
const S_IFREG: u16 = 0x8000;
const S_IFDIR: u16 = 0x4000;
const S_IFLNK: u16 = 0xA000;

/// The bytes of `i_block`: 15 block numbers, an extent tree's root, a
/// fast symlink's target or the first inline data.
pub(super) const I_BLOCK_LEN: usize = 60;
const XATTR_MAGIC: u32 = 0xEA02_0000;
/// An extended attribute value or a symlink target held in memory.
const MAX_VALUE: u64 = 64 << 10;

/// An ext2/3/4 file system over a source (a whole image or a partition).
pub struct Ext4<'s> {
    pub(super) src: &'s dyn ReadAt,
    pub(super) block_size: u64,
    pub(super) blocks: u64,
    pub(super) inodes: u32,
    pub(super) inodes_per_group: u32,
    pub(super) blocks_per_group: u32,
    pub(super) first_data_block: u64,
    pub(super) first_ino: u32,
    pub(super) inode_size: u64,
    pub(super) desc_size: u64,
    pub(super) groups: u64,
    pub(super) incompat: u32,
    pub(super) ro_compat: u32,
    pub(super) first_meta_bg: u64,
    pub(super) meta: RefCell<MetaCache>,
}

impl std::fmt::Debug for Ext4<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ext4")
            .field("block_size", &self.block_size)
            .field("blocks", &self.blocks)
            .field("inodes", &self.inodes)
            .finish_non_exhaustive()
    }
}

/// One inode's bytes.
#[derive(Debug, Clone)]
pub(crate) struct Inode {
    pub(super) raw: Vec<u8>,
    pub(super) number: u32,
}

impl Inode {
    pub(super) fn mode(&self) -> u16 {
        le16(&self.raw, 0)
    }
    pub(super) fn size(&self) -> u64 {
        u64::from(le32(&self.raw, 4)) | u64::from(le32(&self.raw, 0x6C)) << 32
    }
    pub(super) fn links(&self) -> u16 {
        le16(&self.raw, 0x1A)
    }
    pub(super) fn flags(&self) -> u32 {
        le32(&self.raw, 0x20)
    }
    pub(super) fn i_block(&self) -> &[u8] {
        self.raw.get(0x28..0x28 + I_BLOCK_LEN).unwrap_or(&[])
    }
    pub(super) fn file_acl(&self) -> u64 {
        u64::from(le32(&self.raw, 0x68)) | u64::from(le16(&self.raw, 0x76)) << 32
    }
    pub(super) fn kind(&self) -> Kind {
        kind_of(self.mode())
    }
}

fn kind_of(mode: u16) -> Kind {
    match mode & S_IFMT {
        S_IFREG => Kind::File,
        S_IFDIR => Kind::Dir,
        S_IFLNK => Kind::Symlink,
        _ => Kind::Other,
    }
}

/// Whether `src` holds an ext2/3/4 superblock (its magic, at 1024 + 56).
pub fn sniff(src: &dyn ReadAt) -> bool {
    let mut magic = [0u8; 2];
    src.read_exact_at(&mut magic, SUPERBLOCK_AT + 56).is_ok() && u16::from_le_bytes(magic) == MAGIC
}

impl<'s> Ext4<'s> {
    /// Reads and checks the superblock.
    pub fn open(src: &'s dyn ReadAt) -> io::Result<Ext4<'s>> {
        let mut sb = [0u8; SUPERBLOCK_LEN];
        src.read_exact_at(&mut sb, SUPERBLOCK_AT)
            .map_err(|_| bad("the image is too short for an ext superblock"))?;
        if le16(&sb, 0x38) != MAGIC {
            return Err(bad("no ext2/3/4 superblock (magic 0xef53 at 1080)"));
        }
        let log = le32(&sb, 0x18);
        if log > 6 {
            return Err(bad("the superblock's block size is above 64 KiB"));
        }
        let block_size = 1024u64 << log;
        let incompat = le32(&sb, 0x60);
        let ro_compat = le32(&sb, 0x64);
        if incompat & INCOMPAT_COMPRESSION != 0 {
            return Err(bad("compressed ext2 is not read"));
        }
        let blocks = u64::from(le32(&sb, 0x4)) | u64::from(le32(&sb, 0x150)) << 32;
        let blocks = if incompat & INCOMPAT_64BIT != 0 {
            blocks
        } else {
            blocks & 0xFFFF_FFFF
        };
        let inodes = le32(&sb, 0x0);
        let first_data_block = u64::from(le32(&sb, 0x14));
        let blocks_per_group = le32(&sb, 0x20);
        let inodes_per_group = le32(&sb, 0x28);
        let bits = block_size * 8;
        if blocks_per_group == 0
            || inodes_per_group == 0
            || u64::from(blocks_per_group) > bits
            || u64::from(inodes_per_group) > bits
        {
            return Err(bad(
                "the superblock's blocks or inodes per group are out of range",
            ));
        }
        if first_data_block >= blocks {
            return Err(bad(
                "the superblock's first data block is past its block count",
            ));
        }
        let rev = le32(&sb, 0x4C);
        let (inode_size, first_ino) = if rev == 0 {
            (128, 11)
        } else {
            (u64::from(le16(&sb, 0x58)), le32(&sb, 0x54))
        };
        if inode_size < 128 || !inode_size.is_power_of_two() || inode_size > block_size {
            return Err(bad("the superblock's inode size is out of range"));
        }
        let desc_size = if incompat & INCOMPAT_64BIT != 0 {
            u64::from(le16(&sb, 0xFE))
        } else {
            32
        };
        if desc_size < 32 || !desc_size.is_power_of_two() || desc_size > 1024 {
            return Err(bad(
                "the superblock's group descriptor size is out of range",
            ));
        }
        let groups = (blocks - first_data_block).div_ceil(u64::from(blocks_per_group));
        if inodes == 0 || u64::from(inodes) > groups.saturating_mul(u64::from(inodes_per_group)) {
            return Err(bad("the superblock's inode count does not fit its groups"));
        }
        Ok(Ext4 {
            src,
            block_size,
            blocks,
            inodes,
            inodes_per_group,
            blocks_per_group,
            first_data_block,
            first_ino,
            inode_size,
            desc_size,
            groups,
            incompat,
            ro_compat,
            first_meta_bg: u64::from(le32(&sb, 0x104)),
            meta: RefCell::default(),
        })
    }

    /// The block size in bytes (1 KiB to 64 KiB).
    pub fn block_size(&self) -> u64 {
        self.block_size
    }

    /// Whether group `g` holds a superblock backup (and the descriptors).
    pub(super) fn has_super(&self, g: u64) -> bool {
        if self.ro_compat & RO_COMPAT_SPARSE_SUPER == 0 || g <= 1 {
            return true;
        }
        [3u64, 5, 7].iter().any(|&base| {
            let mut p = base;
            while p < g {
                p = p.saturating_mul(base);
            }
            p == g
        })
    }

    /// Byte offset of block `b`, checked against the file system's size.
    pub(super) fn block_at(&self, b: u64) -> io::Result<u64> {
        if b >= self.blocks {
            return Err(bad("a block number is past the file system's end"));
        }
        b.checked_mul(self.block_size)
            .ok_or_else(|| bad("a block number overflows"))
    }

    pub(super) fn block(&self, b: u64) -> io::Result<Vec<u8>> {
        let at = self.block_at(b)?;
        let mut buf = vec![0u8; self.block_size as usize];
        self.src.read_exact_at(&mut buf, at)?;
        Ok(buf)
    }

    /// Fills `buf` from byte `at`, through the metadata cache.
    pub(super) fn meta_read(&self, buf: &mut [u8], at: u64) -> io::Result<()> {
        self.meta.borrow_mut().read(self.src, buf, at)
    }

    /// Group `g`'s descriptor (`desc_size` bytes, at most 1024).
    pub(super) fn descriptor(&self, g: u64) -> io::Result<Vec<u8>> {
        if g >= self.groups {
            return Err(bad("a group number is past the group count"));
        }
        let per_block = self.block_size / self.desc_size;
        let meta_group = g / per_block;
        let block = if self.incompat & INCOMPAT_META_BG != 0 && meta_group >= self.first_meta_bg {
            let first = meta_group * per_block;
            first
                .checked_mul(u64::from(self.blocks_per_group))
                .and_then(|b| b.checked_add(self.first_data_block))
                .and_then(|b| b.checked_add(u64::from(self.has_super(first))))
                .ok_or_else(|| bad("a group descriptor's block overflows"))?
        } else {
            self.first_data_block + 1 + meta_group
        };
        let at = self.block_at(block)? + (g % per_block) * self.desc_size;
        let mut desc = vec![0u8; self.desc_size as usize];
        self.meta_read(&mut desc, at)?;
        Ok(desc)
    }

    pub(super) fn desc_block(&self, desc: &[u8], lo: usize, hi: usize) -> u64 {
        let high = if self.desc_size >= 64 {
            u64::from(le32(desc, hi))
        } else {
            0
        };
        u64::from(le32(desc, lo)) | high << 32
    }

    pub(crate) fn inode(&self, number: u32) -> io::Result<Inode> {
        if number == 0 || number > self.inodes {
            return Err(bad("an inode number is out of range"));
        }
        let index = u64::from(number - 1);
        let per = u64::from(self.inodes_per_group);
        let desc = self.descriptor(index / per)?;
        let table = self.desc_block(&desc, 0x8, 0x28);
        let at = self
            .block_at(table)?
            .checked_add((index % per) * self.inode_size)
            .ok_or_else(|| bad("an inode's offset overflows"))?;
        let mut raw = vec![0u8; self.inode_size as usize];
        self.meta_read(&mut raw, at)?;
        Ok(Inode { raw, number })
    }

    /// A symlink's target: in the inode when shorter than 60 bytes (a
    /// fast symlink, as e2fsprogs tells it), else in its data.
    pub fn symlink(&self, number: u32) -> io::Result<Vec<u8>> {
        let inode = self.inode(number)?;
        if inode.kind() != Kind::Symlink {
            return Err(bad("the inode is not a symlink"));
        }
        let size = inode.size();
        if size > MAX_VALUE {
            return Err(bad("a symlink target is longer than 64 KiB"));
        }
        if inode.flags() & FL_INLINE_DATA == 0 && size < I_BLOCK_LEN as u64 {
            return Ok(inode.i_block().get(..size as usize).unwrap_or(&[]).to_vec());
        }
        let mut target = Vec::new();
        self.data(&inode)?.read_to_end(&mut target)?;
        Ok(target)
    }

    /// An inode's extended attributes, in the inode then in its block:
    /// full names (`user.x`, `security.selinux`, `system.data`) and
    /// values, each at most 64 KiB.
    pub fn xattrs(&self, number: u32) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let inode = self.inode(number)?;
        let mut all = self.inode_xattrs(&inode)?;
        let acl = inode.file_acl();
        if acl != 0 {
            let block = self.block(acl)?;
            if le32(&block, 0) != XATTR_MAGIC || le32(&block, 8) != 1 {
                return Err(bad("an extended attribute block has a bad header"));
            }
            self.parse_xattrs(&block, 32, 0, &mut all)?;
        }
        Ok(all)
    }

    pub(super) fn inode_xattrs(&self, inode: &Inode) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut all = Vec::new();
        if self.inode_size <= 128 {
            return Ok(all);
        }
        let start = 128 + usize::from(le16(&inode.raw, 0x80));
        if start + 4 > inode.raw.len() || le32(&inode.raw, start) != XATTR_MAGIC {
            return Ok(all);
        }
        self.parse_xattrs(&inode.raw, start + 4, start + 4, &mut all)?;
        Ok(all)
    }

    /// Entries from `first` in `region`; values at `base` + their offset
    /// (or in an inode of their own, `ea_inode`).
    pub(super) fn parse_xattrs(
        &self,
        region: &[u8],
        first: usize,
        base: usize,
        out: &mut Vec<(Vec<u8>, Vec<u8>)>,
    ) -> io::Result<()> {
        let mut at = first;
        // Each entry takes at least 16 bytes: the region bounds the count.
        while at + 4 <= region.len() && le32(region, at) != 0 {
            let head = region
                .get(at..at + 16)
                .ok_or_else(|| bad("an extended attribute entry is cut short"))?;
            let name_len = usize::from(head[0]);
            let prefix: &[u8] = match head[1] {
                1 => b"user.",
                2 => b"system.posix_acl_access",
                3 => b"system.posix_acl_default",
                4 => b"trusted.",
                6 => b"security.",
                7 => b"system.",
                8 => b"system.richacl",
                _ => b"",
            };
            let value_at = usize::from(le16(head, 2));
            let value_inode = le32(head, 4);
            let value_size = u64::from(le32(head, 8));
            let name = region
                .get(at + 16..at + 16 + name_len)
                .ok_or_else(|| bad("an extended attribute name is cut short"))?;
            if value_size > MAX_VALUE {
                return Err(bad("an extended attribute value is larger than 64 KiB"));
            }
            let value = if value_inode != 0 {
                let holder = self.inode(value_inode)?;
                let mut v = Vec::new();
                self.data(&holder)?.take(value_size).read_to_end(&mut v)?;
                v
            } else {
                let from = base + value_at;
                region
                    .get(from..from + value_size as usize)
                    .ok_or_else(|| bad("an extended attribute value lies outside its region"))?
                    .to_vec()
            };
            let mut full = prefix.to_vec();
            full.extend_from_slice(name);
            out.push((full, value));
            at += (16 + name_len + 3) & !3;
        }
        Ok(())
    }
}
