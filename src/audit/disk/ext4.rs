//! ext2, ext3 and ext4 read without mounting (the layout of the kernel's
//! `Documentation/filesystems/ext4/`): the superblock, the group
//! descriptors (32- or 64-byte, `meta_bg` too), the inode tables; a walk
//! from the root directory (inode 2) and each regular file's data through
//! extents, classic block maps or inline data.
//!
//! Not read: the journal (an image that needs recovery is read as it is on
//! disk), compressed ext2 (`Err`), encrypted contents (read as stored).
//!
//! Bounds, all documented on their constants: a directory walk's entries,
//! depth, path length and directory bytes, with a visited set of directory
//! inodes; an extent tree's depth (5, as the kernel) and the tree nodes
//! read per file; a block map's depth is fixed (triple indirect) and each
//! indirect block is read once per run of the file. Reads never go past a
//! file's declared size nor outside the file system; holes and
//! uninitialised extents read as zeros (a sparse file's declared size is
//! the caller's to bound, like any file's).

use std::cell::RefCell;
use std::collections::HashSet;
use std::io::{self, Read};

use super::common::{bad, bytes, le16, le32, read_full, Kind};
use crate::audit::source::ReadAt;

const SUPERBLOCK_AT: u64 = 1024;
const SUPERBLOCK_LEN: usize = 1024;
const MAGIC: u16 = 0xEF53;
/// The root directory's inode.
pub const ROOT: u32 = 2;

const INCOMPAT_COMPRESSION: u32 = 0x1;
const INCOMPAT_FILETYPE: u32 = 0x2;
const INCOMPAT_META_BG: u32 = 0x10;
const INCOMPAT_64BIT: u32 = 0x80;
const RO_COMPAT_SPARSE_SUPER: u32 = 0x1;
const RO_COMPAT_GDT_CSUM: u32 = 0x10;
const RO_COMPAT_METADATA_CSUM: u32 = 0x400;

const FL_EXTENTS: u32 = 0x8_0000;
const FL_INLINE_DATA: u32 = 0x1000_0000;

const S_IFMT: u16 = 0xF000;
const S_IFREG: u16 = 0x8000;
const S_IFDIR: u16 = 0x4000;
const S_IFLNK: u16 = 0xA000;

/// The bytes of `i_block`: 15 block numbers, an extent tree's root, a
/// fast symlink's target or the first inline data.
const I_BLOCK_LEN: usize = 60;
const XATTR_MAGIC: u32 = 0xEA02_0000;
/// The kernel's `EXT4_MAX_EXTENT_DEPTH`.
const MAX_EXTENT_DEPTH: u16 = 5;
/// Extent tree nodes read per file, in bytes of blocks: 64 MiB is 16384
/// nodes of 4 KiB, about 5 million extents (a real file has a few
/// thousand at most).
const MAX_EXTENT_NODE_BYTES: u64 = 64 << 20;
/// An extended attribute value or a symlink target held in memory.
const MAX_VALUE: u64 = 64 << 10;
/// Regular-file inodes [`Ext4::unlinked`] examines per image.
const MAX_INODES_EXAMINED: u64 = 1 << 24;
/// Group descriptors and inodes are read through a cache of this many
/// aligned chunks of the image, each [`META_CHUNK`] bytes (4 MiB at most):
/// a walk reads each inode three or four times (its kind, its data, its
/// link target, its extended attributes) and its group's descriptor each
/// time, which were two small reads each (85,000 `pread`s for 13,084
/// files before the cache, 4,000 after; docs/benchmark.md).
const META_SLOTS: usize = 256;
const META_CHUNK: u64 = 16 * 1024;

/// What a directory walk may cover; [`Default`] fits any real root file
/// system (a few hundred thousand entries).
#[derive(Debug, Clone, Copy)]
pub struct WalkLimits {
    /// Entries yielded in all (each costs an inode read).
    pub entries: u64,
    /// Directories open at once (each holds one block).
    pub depth: usize,
    /// Bytes of a path (Linux's `PATH_MAX` is 4096).
    pub path: usize,
    /// Bytes of directory data read in all.
    pub dir_bytes: u64,
}

impl Default for WalkLimits {
    fn default() -> Self {
        Self {
            entries: 1 << 21,
            depth: 256,
            path: 4096,
            dir_bytes: 1 << 30,
        }
    }
}

/// An entry a directory walk found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// From the root, `/`-separated, no leading `/`; raw name bytes.
    pub path: Vec<u8>,
    pub kind: Kind,
    /// The inode's full `i_mode` (type and permission bits).
    pub mode: u16,
    pub size: u64,
    pub inode: u32,
}

/// An ext2/3/4 file system over a source (a whole image or a partition).
pub struct Ext4<'s> {
    src: &'s dyn ReadAt,
    block_size: u64,
    blocks: u64,
    inodes: u32,
    inodes_per_group: u32,
    blocks_per_group: u32,
    first_data_block: u64,
    first_ino: u32,
    inode_size: u64,
    desc_size: u64,
    groups: u64,
    incompat: u32,
    ro_compat: u32,
    first_meta_bg: u64,
    meta: RefCell<MetaCache>,
}

/// Direct-mapped chunks of the image holding metadata (descriptors,
/// inode tables): each slot remembers the chunk it holds.
#[derive(Default)]
struct MetaCache {
    slots: Vec<Option<(u64, Vec<u8>)>>,
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
    raw: Vec<u8>,
    number: u32,
}

impl Inode {
    fn mode(&self) -> u16 {
        le16(&self.raw, 0)
    }
    fn size(&self) -> u64 {
        u64::from(le32(&self.raw, 4)) | u64::from(le32(&self.raw, 0x6C)) << 32
    }
    fn links(&self) -> u16 {
        le16(&self.raw, 0x1A)
    }
    fn flags(&self) -> u32 {
        le32(&self.raw, 0x20)
    }
    fn i_block(&self) -> &[u8] {
        self.raw.get(0x28..0x28 + I_BLOCK_LEN).unwrap_or(&[])
    }
    fn file_acl(&self) -> u64 {
        u64::from(le32(&self.raw, 0x68)) | u64::from(le16(&self.raw, 0x76)) << 32
    }
    fn kind(&self) -> Kind {
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
    fn has_super(&self, g: u64) -> bool {
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
    fn block_at(&self, b: u64) -> io::Result<u64> {
        if b >= self.blocks {
            return Err(bad("a block number is past the file system's end"));
        }
        b.checked_mul(self.block_size)
            .ok_or_else(|| bad("a block number overflows"))
    }

    fn block(&self, b: u64) -> io::Result<Vec<u8>> {
        let at = self.block_at(b)?;
        let mut buf = vec![0u8; self.block_size as usize];
        self.src.read_exact_at(&mut buf, at)?;
        Ok(buf)
    }

    /// Fills `buf` from byte `at`, through the metadata cache: a read that
    /// does not straddle two chunks is served from its chunk, read whole
    /// once (shorter at the image's end).
    fn meta_read(&self, buf: &mut [u8], at: u64) -> io::Result<()> {
        let len = buf.len() as u64;
        let chunk = at / META_CHUNK;
        let end = at
            .checked_add(len)
            .ok_or_else(|| bad("an offset overflows"))?;
        if len == 0 || len > META_CHUNK || (end - 1) / META_CHUNK != chunk {
            return self.src.read_exact_at(buf, at);
        }
        let mut meta = self.meta.borrow_mut();
        if meta.slots.is_empty() {
            meta.slots.resize_with(META_SLOTS, || None);
        }
        let slot = (chunk % META_SLOTS as u64) as usize;
        let cached = match meta.slots.get_mut(slot) {
            Some(s) => s,
            None => return self.src.read_exact_at(buf, at),
        };
        if !matches!(cached, Some((c, _)) if *c == chunk) {
            let start = chunk * META_CHUNK;
            let room = self.src.len().saturating_sub(start).min(META_CHUNK) as usize;
            let mut data = match cached.take() {
                Some((_, mut old)) => {
                    old.resize(room, 0);
                    old
                }
                None => vec![0u8; room],
            };
            self.src.read_exact_at(&mut data, start)?;
            *cached = Some((chunk, data));
        }
        let data = match cached {
            Some((_, data)) => data,
            None => return self.src.read_exact_at(buf, at),
        };
        let from = (at - chunk * META_CHUNK) as usize;
        match data.get(from..from + buf.len()) {
            Some(bytes) => {
                buf.copy_from_slice(bytes);
                Ok(())
            }
            None => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the data ends early",
            )),
        }
    }

    /// Group `g`'s descriptor (`desc_size` bytes, at most 1024).
    fn descriptor(&self, g: u64) -> io::Result<Vec<u8>> {
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

    fn desc_block(&self, desc: &[u8], lo: usize, hi: usize) -> u64 {
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

    /// Walks every entry reachable from the root directory, depth first,
    /// within [`WalkLimits::default`].
    pub fn walk(&self) -> Walk<'_> {
        self.walk_with(WalkLimits::default())
    }

    /// Walks within `limits`. A damaged directory block or inode yields an
    /// `Err` and the walk goes on; a limit reached yields one `Err` and
    /// ends it.
    pub fn walk_with(&self, limits: WalkLimits) -> Walk<'_> {
        let mut walk = Walk {
            fs: self,
            stack: Vec::new(),
            path: Vec::new(),
            visited: HashSet::new(),
            reached: HashSet::new(),
            entries: 0,
            dir_bytes: 0,
            limits,
            pending_err: None,
            done: false,
        };
        match self.inode(ROOT).and_then(|root| {
            if root.kind() != Kind::Dir {
                return Err(bad("the root inode is not a directory"));
            }
            self.dir_cursor(&root)
        }) {
            Ok(cursor) => {
                walk.visited.insert(ROOT);
                walk.stack.push(Level {
                    cursor,
                    path_len: 0,
                });
            }
            Err(e) => walk.pending_err = Some(e),
        }
        walk
    }

    /// A regular file's data, streamed: at most its declared size.
    pub fn read(&self, number: u32) -> io::Result<Data<'_>> {
        let inode = self.inode(number)?;
        if inode.kind() != Kind::File {
            return Err(bad("the inode is not a regular file"));
        }
        self.data(&inode)
    }

    /// The data of any inode, by the way its flags say it is stored.
    fn data(&self, inode: &Inode) -> io::Result<Data<'_>> {
        let size = inode.size();
        let map = if inode.flags() & FL_INLINE_DATA != 0 {
            let mut bytes = inode.i_block().to_vec();
            if size > I_BLOCK_LEN as u64 {
                let more = self
                    .inode_xattrs(inode)?
                    .into_iter()
                    .find(|(name, _)| name == b"system.data")
                    .map(|(_, value)| value)
                    .unwrap_or_default();
                bytes.extend_from_slice(&more);
            }
            if (bytes.len() as u64) < size {
                return Err(bad("inline data is shorter than the inode's size"));
            }
            Map::Inline(bytes)
        } else if inode.flags() & FL_EXTENTS != 0 {
            let root = inode.i_block().to_vec();
            let depth = extent_header(&root)?.1;
            Map::Extents {
                stack: vec![Node {
                    buf: root,
                    next: 0,
                    depth,
                }],
                node_bytes: 0,
                current: None,
            }
        } else {
            let mut direct = [0u32; 15];
            for (i, d) in direct.iter_mut().enumerate() {
                *d = le32(inode.i_block(), i * 4);
            }
            Map::Blocks {
                direct,
                cache: [None, None, None],
            }
        };
        Ok(Data {
            fs: self,
            size,
            pos: 0,
            map,
        })
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

    fn inode_xattrs(&self, inode: &Inode) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
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
    fn parse_xattrs(
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

    fn dir_cursor(&self, inode: &Inode) -> io::Result<DirCursor<'_>> {
        if inode.flags() & FL_INLINE_DATA != 0 {
            // The first 4 bytes are the parent's inode; entries follow,
            // then go on in the `system.data` attribute.
            let mut chunks = vec![inode.i_block().get(4..).unwrap_or(&[]).to_vec()];
            if inode.size() > I_BLOCK_LEN as u64 {
                if let Some((_, more)) = self
                    .inode_xattrs(inode)?
                    .into_iter()
                    .find(|(name, _)| name == b"system.data")
                {
                    chunks.push(more);
                }
            }
            chunks.reverse();
            return Ok(DirCursor {
                data: None,
                chunks,
                buf: Vec::new(),
                pos: 0,
            });
        }
        Ok(DirCursor {
            data: Some(self.data(inode)?),
            chunks: Vec::new(),
            buf: Vec::new(),
            pos: 0,
        })
    }

    fn filetype(&self) -> bool {
        self.incompat & INCOMPAT_FILETYPE != 0
    }

    /// Allocated regular-file inodes (by the inode bitmaps, from the first
    /// non-reserved inode) that are not in `reached` (give it
    /// [`Walk::reached`] after a full walk): files no directory entry
    /// names. Groups whose inode table is not initialised are skipped; at
    /// most 2^24 inodes are examined.
    pub fn unlinked<'w>(&'w self, reached: &'w HashSet<u32>) -> Unlinked<'w> {
        Unlinked {
            fs: self,
            reached,
            group: 0,
            bitmap: Vec::new(),
            index: 0,
            examined: 0,
        }
    }
}

fn extent_header(node: &[u8]) -> io::Result<(u16, u16)> {
    if le16(node, 0) != 0xF30A {
        return Err(bad("an extent tree node has a bad magic"));
    }
    let count = le16(node, 2);
    let depth = le16(node, 6);
    if 12 + 12 * usize::from(count) > node.len() || count > le16(node, 4) {
        return Err(bad("an extent tree node holds more entries than fit"));
    }
    if depth > MAX_EXTENT_DEPTH {
        return Err(bad("an extent tree is deeper than 5"));
    }
    Ok((count, depth))
}

#[derive(Debug)]
struct Node {
    buf: Vec<u8>,
    next: u16,
    depth: u16,
}

#[derive(Debug, Clone, Copy)]
struct Extent {
    logical: u64,
    len: u64,
    physical: u64,
    uninit: bool,
}

#[derive(Debug)]
enum Map {
    Inline(Vec<u8>),
    Extents {
        /// The path from the root to the node being read; each child one
        /// level shallower than its parent, so at most 6 deep.
        stack: Vec<Node>,
        node_bytes: u64,
        current: Option<Extent>,
    },
    Blocks {
        direct: [u32; 15],
        /// The last indirect block read at each level: (block, entries).
        cache: [Option<(u64, Vec<u32>)>; 3],
    },
}

/// A file's data as a stream (see [`Ext4::read`]).
#[derive(Debug)]
pub struct Data<'f> {
    fs: &'f Ext4<'f>,
    size: u64,
    pos: u64,
    map: Map,
}

/// Where a run of the file starting at a logical block lies.
enum Run {
    /// Zeros (a hole or an uninitialised extent), this many blocks.
    Zeros(u64),
    /// On disk from this physical block, this many blocks.
    Disk(u64, u64),
}

impl Data<'_> {
    /// The declared size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The next leaf extent of the tree, in stored order.
    fn next_extent(
        fs: &Ext4<'_>,
        stack: &mut Vec<Node>,
        node_bytes: &mut u64,
    ) -> io::Result<Option<Extent>> {
        loop {
            let Some(top) = stack.last_mut() else {
                return Ok(None);
            };
            let count = le16(&top.buf, 2);
            if top.next >= count {
                stack.pop();
                continue;
            }
            let at = 12 + 12 * usize::from(top.next);
            top.next += 1;
            let e: [u8; 12] = bytes(&top.buf, at);
            if top.depth == 0 {
                let raw = u64::from(le16(&e, 4));
                let (len, uninit) = if raw > 32768 {
                    (raw - 32768, true)
                } else {
                    (raw, false)
                };
                if len == 0 {
                    continue;
                }
                return Ok(Some(Extent {
                    logical: u64::from(le32(&e, 0)),
                    len,
                    physical: u64::from(le16(&e, 6)) << 32 | u64::from(le32(&e, 8)),
                    uninit,
                }));
            }
            let want = top.depth - 1;
            let child = u64::from(le16(&e, 8)) << 32 | u64::from(le32(&e, 4));
            *node_bytes += fs.block_size;
            if *node_bytes > MAX_EXTENT_NODE_BYTES {
                return Err(bad("an extent tree has more nodes than the bound"));
            }
            let buf = fs.block(child)?;
            if extent_header(&buf)?.1 != want {
                return Err(bad("an extent tree node has the wrong depth"));
            }
            stack.push(Node {
                buf,
                next: 0,
                depth: want,
            });
        }
    }

    /// Where logical block `l` lies, and for how many blocks (at most
    /// `max`, at least 1).
    fn run(&mut self, l: u64, max: u64) -> io::Result<Run> {
        let fs = self.fs;
        match &mut self.map {
            Map::Inline(_) => Ok(Run::Zeros(1)),
            Map::Extents {
                stack,
                node_bytes,
                current,
            } => {
                // Extents behind the position (stored out of order or
                // overlapping) are skipped: each is read at most once.
                loop {
                    match current {
                        Some(e) if e.logical.saturating_add(e.len) > l => break,
                        _ => match Self::next_extent(fs, stack, node_bytes)? {
                            Some(e) => *current = Some(e),
                            None => {
                                *current = None;
                                return Ok(Run::Zeros(max));
                            }
                        },
                    }
                }
                let Some(e) = current else {
                    return Ok(Run::Zeros(max));
                };
                if e.logical > l {
                    return Ok(Run::Zeros((e.logical - l).min(max)));
                }
                let left = (e.logical + e.len - l).min(max);
                if e.uninit {
                    Ok(Run::Zeros(left))
                } else {
                    let at = e
                        .physical
                        .checked_add(l - e.logical)
                        .ok_or_else(|| bad("an extent's block overflows"))?;
                    Ok(Run::Disk(at, left))
                }
            }
            Map::Blocks { direct, cache } => {
                let first = lookup(fs, direct, cache, l)?;
                let mut n = 1;
                while n < max {
                    let next = lookup(fs, direct, cache, l + n)?;
                    let follows = if first == 0 {
                        next == 0
                    } else {
                        next == first + n
                    };
                    if !follows {
                        break;
                    }
                    n += 1;
                }
                Ok(if first == 0 {
                    Run::Zeros(n)
                } else {
                    Run::Disk(first, n)
                })
            }
        }
    }
}

/// The physical block of logical block `l` through a classic block map
/// (0: a hole).
fn lookup(
    fs: &Ext4<'_>,
    direct: &[u32; 15],
    cache: &mut [Option<(u64, Vec<u32>)>; 3],
    l: u64,
) -> io::Result<u64> {
    let p = fs.block_size / 4;
    let slot = |i: usize| u64::from(direct.get(i).copied().unwrap_or(0));
    let (root, path): (u64, Vec<u64>) = if l < 12 {
        return Ok(slot(l as usize));
    } else if l - 12 < p {
        (slot(12), vec![l - 12])
    } else if l - 12 - p < p * p {
        let r = l - 12 - p;
        (slot(13), vec![r / p, r % p])
    } else if l - 12 - p - p * p < p * p * p {
        let r = l - 12 - p - p * p;
        (slot(14), vec![r / (p * p), (r / p) % p, r % p])
    } else {
        return Err(bad("a block-mapped file is larger than its map"));
    };
    let mut block = root;
    for (level, idx) in path.into_iter().enumerate() {
        if block == 0 {
            return Ok(0);
        }
        let entry = cache
            .get_mut(level)
            .ok_or_else(|| bad("block map too deep"))?;
        let fresh = !matches!(entry, Some((b, _)) if *b == block);
        if fresh {
            let raw = fs.block(block)?;
            let list = raw.chunks_exact(4).map(|c| le32(c, 0)).collect::<Vec<_>>();
            *entry = Some((block, list));
        }
        block = match entry {
            Some((_, list)) => u64::from(list.get(idx as usize).copied().unwrap_or(0)),
            None => 0,
        };
    }
    Ok(block)
}

impl Read for Data<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.size.saturating_sub(self.pos);
        let want = (buf.len() as u64).min(left) as usize;
        if want == 0 {
            return Ok(0);
        }
        let Some(buf) = buf.get_mut(..want) else {
            return Ok(0);
        };
        if let Map::Inline(bytes) = &self.map {
            let from = self.pos as usize;
            let Some(src) = bytes.get(from..from + want) else {
                return Err(bad("inline data is shorter than the inode's size"));
            };
            buf.copy_from_slice(src);
            self.pos += want as u64;
            return Ok(want);
        }
        let bs = self.fs.block_size;
        let l = self.pos / bs;
        let skip = self.pos % bs;
        let max_blocks = (skip + want as u64).div_ceil(bs);
        let n = match self.run(l, max_blocks)? {
            Run::Zeros(blocks) => {
                let n = (blocks * bs - skip).min(want as u64) as usize;
                buf.iter_mut().take(n).for_each(|b| *b = 0);
                n
            }
            Run::Disk(first, blocks) => {
                let last = first
                    .checked_add(blocks - 1)
                    .ok_or_else(|| bad("a block number overflows"))?;
                self.fs.block_at(last)?;
                let at = self.fs.block_at(first)? + skip;
                let n = (blocks * bs - skip).min(want as u64) as usize;
                let part = buf.get_mut(..n).unwrap_or(&mut []);
                self.fs.src.read_exact_at(part, at)?;
                n
            }
        };
        self.pos += n as u64;
        Ok(n)
    }
}

/// One open directory of a walk.
#[derive(Debug)]
struct DirCursor<'f> {
    /// Block-stored directories: read one block at a time.
    data: Option<Data<'f>>,
    /// Inline directories: the chunks left, last first.
    chunks: Vec<Vec<u8>>,
    buf: Vec<u8>,
    pos: usize,
}

#[derive(Debug)]
struct Level<'f> {
    cursor: DirCursor<'f>,
    /// The length of this directory's path in [`Walk::path`].
    path_len: usize,
}

/// The entries reachable from the root (see [`Ext4::walk`]).
#[derive(Debug)]
pub struct Walk<'f> {
    fs: &'f Ext4<'f>,
    stack: Vec<Level<'f>>,
    path: Vec<u8>,
    visited: HashSet<u32>,
    reached: HashSet<u32>,
    entries: u64,
    dir_bytes: u64,
    limits: WalkLimits,
    pending_err: Option<io::Error>,
    done: bool,
}

impl Walk<'_> {
    /// The regular-file inodes yielded so far.
    pub fn reached(&self) -> &HashSet<u32> {
        &self.reached
    }

    /// The next raw entry of the top directory: (inode, name).
    fn next_raw(&mut self) -> Option<io::Result<(u32, Vec<u8>)>> {
        let bs = self.fs.block_size as usize;
        let filetype = self.fs.filetype();
        let top = self.stack.last_mut()?;
        let cur = &mut top.cursor;
        loop {
            if cur.pos + 8 > cur.buf.len() {
                // The next chunk: a block, or an inline part.
                let next = match &mut cur.data {
                    Some(data) => {
                        let mut block = vec![0u8; bs];
                        match read_full(data, &mut block) {
                            Ok(0) => None,
                            Ok(n) => {
                                block.truncate(n);
                                Some(block)
                            }
                            Err(e) => {
                                cur.data = None;
                                return Some(Err(e));
                            }
                        }
                    }
                    None => cur.chunks.pop(),
                };
                let next = next?;
                self.dir_bytes += next.len() as u64;
                if self.dir_bytes > self.limits.dir_bytes {
                    self.done = true;
                    return Some(Err(bad(
                        "the walk read more directory bytes than its bound",
                    )));
                }
                cur.buf = next;
                cur.pos = 0;
                continue;
            }
            let at = cur.pos;
            let ino = le32(&cur.buf, at);
            let raw_len = usize::from(le16(&cur.buf, at + 4));
            let rec_len = if raw_len == 0 && cur.buf.len() >= 65536 {
                65536
            } else {
                raw_len
            };
            let name_len = if filetype {
                usize::from(cur.buf.get(at + 6).copied().unwrap_or(0))
            } else {
                usize::from(le16(&cur.buf, at + 6))
            };
            if rec_len < 8 || at + rec_len > cur.buf.len() || 8 + name_len > rec_len {
                cur.pos = cur.buf.len();
                return Some(Err(bad("a directory entry's length is out of range")));
            }
            cur.pos += rec_len;
            let Some(name) = cur.buf.get(at + 8..at + 8 + name_len) else {
                continue;
            };
            if ino == 0 || name == b"." || name == b".." {
                continue;
            }
            if name.is_empty() || name.contains(&b'/') || name.contains(&0) {
                return Some(Err(bad(
                    "a directory entry's name is empty or holds `/` or NUL",
                )));
            }
            return Some(Ok((ino, name.to_vec())));
        }
    }
}

impl Iterator for Walk<'_> {
    type Item = io::Result<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.pending_err.take() {
            return Some(Err(e));
        }
        loop {
            if self.done {
                return None;
            }
            let path_len = self.stack.last()?.path_len;
            let (ino, name) = match self.next_raw() {
                None => {
                    if self.done {
                        return None;
                    }
                    self.stack.pop();
                    continue;
                }
                Some(Err(e)) => return Some(Err(e)),
                Some(Ok(raw)) => raw,
            };
            self.entries += 1;
            if self.entries > self.limits.entries {
                self.done = true;
                return Some(Err(bad("the walk found more entries than its bound")));
            }
            self.path.truncate(path_len);
            if !self.path.is_empty() {
                self.path.push(b'/');
            }
            self.path.extend_from_slice(&name);
            if self.path.len() > self.limits.path {
                return Some(Err(bad("a path is longer than the bound")));
            }
            let inode = match self.fs.inode(ino) {
                Ok(i) => i,
                Err(e) => return Some(Err(e)),
            };
            let entry = Entry {
                path: self.path.clone(),
                kind: inode.kind(),
                mode: inode.mode(),
                size: inode.size(),
                inode: ino,
            };
            match entry.kind {
                Kind::File => {
                    self.reached.insert(ino);
                }
                Kind::Dir if self.visited.insert(ino) => {
                    if self.stack.len() >= self.limits.depth {
                        self.pending_err = Some(bad("directories nest deeper than the bound"));
                    } else {
                        match self.fs.dir_cursor(&inode) {
                            Ok(cursor) => self.stack.push(Level {
                                cursor,
                                path_len: self.path.len(),
                            }),
                            Err(e) => self.pending_err = Some(e),
                        }
                    }
                }
                _ => {}
            }
            return Some(Ok(entry));
        }
    }
}

/// Allocated regular files no directory names (see [`Ext4::unlinked`]).
#[derive(Debug)]
pub struct Unlinked<'f> {
    fs: &'f Ext4<'f>,
    reached: &'f HashSet<u32>,
    group: u64,
    bitmap: Vec<u8>,
    index: u32,
    examined: u64,
}

impl Iterator for Unlinked<'_> {
    type Item = io::Result<u32>;

    fn next(&mut self) -> Option<Self::Item> {
        let fs = self.fs;
        let csum = fs.ro_compat & (RO_COMPAT_GDT_CSUM | RO_COMPAT_METADATA_CSUM) != 0;
        loop {
            if self.index >= fs.inodes_per_group || self.bitmap.is_empty() {
                if !self.bitmap.is_empty() {
                    self.group += 1;
                }
                self.index = 0;
                self.bitmap.clear();
                if self.group >= fs.groups {
                    return None;
                }
                let desc = match fs.descriptor(self.group) {
                    Ok(d) => d,
                    Err(e) => {
                        self.group = fs.groups;
                        return Some(Err(e));
                    }
                };
                let flags = le16(&desc, 0x12);
                if csum && flags & 0x1 != 0 {
                    self.group += 1;
                    continue;
                }
                match fs.block(fs.desc_block(&desc, 0x4, 0x24)) {
                    Ok(b) => self.bitmap = b,
                    Err(e) => {
                        self.group += 1;
                        return Some(Err(e));
                    }
                }
                continue;
            }
            let i = self.index;
            self.index += 1;
            let used = self
                .bitmap
                .get((i / 8) as usize)
                .is_some_and(|b| b & (1 << (i % 8)) != 0);
            let number = self.group * u64::from(fs.inodes_per_group) + u64::from(i) + 1;
            let Ok(number) = u32::try_from(number) else {
                return None;
            };
            if number > fs.inodes {
                return None;
            }
            if !used || number < fs.first_ino.max(ROOT + 1) || self.reached.contains(&number) {
                continue;
            }
            self.examined += 1;
            if self.examined > MAX_INODES_EXAMINED {
                self.group = fs.groups;
                return Some(Err(bad("more allocated inodes than the bound")));
            }
            match fs.inode(number) {
                Ok(inode) if inode.kind() == Kind::File && inode.links() < u16::MAX => {
                    return Some(Ok(number))
                }
                Ok(_) => {}
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::disk::testkit::{mem, mutate, pattern, scratch, sh, Rng, SECRET};
    use std::collections::BTreeMap;
    use std::path::Path;

    /// The tree every image is made from: name -> content (files), or
    /// `None` for folders; symlinks apart.
    fn make_tree(root: &Path, big: usize) -> BTreeMap<String, Option<Vec<u8>>> {
        let mut files = BTreeMap::new();
        let mut put = |name: &str, data: Option<Vec<u8>>| {
            let p = root.join(name);
            match &data {
                Some(d) => std::fs::write(&p, d).unwrap(),
                None => std::fs::create_dir_all(&p).unwrap(),
            }
            files.insert(name.to_owned(), data);
        };
        put("small.txt", Some(b"hello from ext4\n".to_vec()));
        put("big.bin", Some(pattern(big, 7)));
        put("inline60", Some(pattern(60, 9)));
        put("inline100", Some(pattern(100, 10)));
        put("empty", Some(Vec::new()));
        put("etc", None);
        put("etc/sota", None);
        put("etc/sota/client.pem", Some(SECRET.to_vec()));
        let mut deep = String::from("d");
        put(&deep, None);
        for i in 1..40 {
            deep.push_str(&format!("/d{i}"));
            put(&deep, None);
        }
        put(&format!("{deep}/bottom.txt"), Some(b"the bottom".to_vec()));
        put("many", None);
        for i in 0..300 {
            put(
                &format!("many/file-with-a-longish-name-{i:04}"),
                Some(format!("{i}").into_bytes()),
            );
        }
        std::os::unix::fs::symlink("small.txt", root.join("fast-link")).unwrap();
        std::os::unix::fs::symlink("x".repeat(100), root.join("slow-link")).unwrap();
        files
    }

    fn image(
        name: &str,
        mkfs: &str,
        big: usize,
    ) -> (
        crate::audit::disk::testkit::Scratch,
        Vec<u8>,
        BTreeMap<String, Option<Vec<u8>>>,
    ) {
        let dir = scratch(name);
        std::fs::create_dir(dir.join("tree")).unwrap();
        let tree = make_tree(&dir.join("tree"), big);
        let kib = (big + big / 2) / 1024 + 8192;
        sh(
            &dir,
            &format!("{mkfs} -q -F -d tree fs.img {kib}k >/dev/null"),
        );
        let img = std::fs::read(dir.join("fs.img")).unwrap();
        (dir, img, tree)
    }

    /// Walks `fs` and checks every entry against `tree`: kinds, sizes,
    /// contents, symlink targets, and that nothing is missing.
    fn check(fs: &Ext4<'_>, tree: &BTreeMap<String, Option<Vec<u8>>>) {
        let mut seen = BTreeMap::new();
        let mut walk = fs.walk();
        for entry in walk.by_ref() {
            let entry = entry.unwrap();
            let path = String::from_utf8(entry.path.clone()).unwrap();
            if path == "lost+found" {
                continue;
            }
            match entry.kind {
                Kind::File => {
                    let mut data = Vec::new();
                    fs.read(entry.inode)
                        .unwrap()
                        .read_to_end(&mut data)
                        .unwrap();
                    assert_eq!(data.len() as u64, entry.size, "{path}");
                    assert!(tree[&path].as_deref() == Some(&data[..]), "{path} differs");
                }
                Kind::Dir => assert_eq!(tree[&path], None, "{path}"),
                Kind::Symlink => {
                    let want = if path == "fast-link" {
                        b"small.txt".to_vec()
                    } else {
                        vec![b'x'; 100]
                    };
                    assert_eq!(fs.symlink(entry.inode).unwrap(), want, "{path}");
                }
                Kind::Other => panic!("{path}: unexpected kind"),
            }
            assert!(seen.insert(path, entry.inode).is_none(), "an entry twice");
        }
        for name in tree.keys() {
            assert!(seen.contains_key(name), "{name} not found");
        }
        assert!(seen.contains_key("fast-link") && seen.contains_key("slow-link"));
        assert_eq!(
            walk.reached().len(),
            tree.values().filter(|v| v.is_some()).count()
        );
    }

    #[test]
    fn an_ext4_image_gives_every_file_back() {
        // Extents, 64-bit descriptors, inline data, htree directories.
        let (_dir, img, tree) = image("ext4", "mkfs.ext4 -b 4096 -O inline_data,64bit", 5 << 20);
        let src = mem(&img);
        let fs = Ext4::open(&src).unwrap();
        check(&fs, &tree);
        // The 60- and 100-byte files are inline (the second in the
        // `system.data` attribute too), the big one in extents.
        let find = |name: &str| {
            fs.walk()
                .filter_map(|e| e.ok())
                .find(|e| e.path == name.as_bytes())
                .unwrap()
                .inode
        };
        assert!(fs.inode(find("inline60")).unwrap().flags() & FL_INLINE_DATA != 0);
        let inl = fs.inode(find("inline100")).unwrap();
        assert!(inl.flags() & FL_INLINE_DATA != 0);
        assert!(fs
            .xattrs(inl.number)
            .unwrap()
            .iter()
            .any(|(n, v)| n == b"system.data" && v.len() == 40));
        assert!(fs.inode(find("big.bin")).unwrap().flags() & FL_EXTENTS != 0);
    }

    /// A source that counts its reads.
    struct Counted<'a> {
        inner: &'a dyn ReadAt,
        reads: std::cell::Cell<u64>,
    }

    impl ReadAt for Counted<'_> {
        fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
            self.reads.set(self.reads.get() + 1);
            self.inner.read_at(buf, offset)
        }
        fn len(&self) -> u64 {
            self.inner.len()
        }
    }

    #[test]
    fn metadata_reads_go_through_the_cache_and_give_the_image_bytes() {
        let (_dir, img, tree) = image("ext4-cache", "mkfs.ext4 -b 1024", 64 << 10);
        let src = mem(&img);
        let counted = Counted {
            inner: &src,
            reads: std::cell::Cell::new(0),
        };
        let fs = Ext4::open(&counted).unwrap();
        // Served from a chunk, across a chunk's end (read directly), at the
        // image's end, and past it: the bytes of the image or an error.
        let len = img.len() as u64;
        for (at, n) in [
            (0u64, 256usize),
            (META_CHUNK - 128, 256),
            (META_CHUNK - 256, 256),
            (len - 64, 64),
            (len - 32, 64),
            (len, 1),
        ] {
            let mut got = vec![0u8; n];
            let result = fs.meta_read(&mut got, at);
            let want = img.get(at as usize..at as usize + n);
            match want {
                Some(want) => assert_eq!(&got[..], want, "{at}+{n}"),
                None => assert!(result.is_err(), "{at}+{n} past the end"),
            }
        }
        // The walk (each file's inode read for its kind, data, link and
        // attributes) reads the image about once per file's data, not
        // twice more per inode as without the cache (1,700 here).
        counted.reads.set(0);
        check(&fs, &tree);
        let files = tree.len() as u64;
        assert!(
            counted.reads.get() < files * 2,
            "{} reads for {files} entries",
            counted.reads.get()
        );
    }

    #[test]
    fn block_mapped_images_read_through_double_indirect_blocks() {
        // No extents: 20 MB at 4 KiB blocks passes the 12 direct blocks
        // and the 1024 of the indirect block.
        let (_dir, img, tree) = image(
            "ext3",
            "mkfs.ext4 -b 4096 -O ^extent,^64bit,^flex_bg -t ext3",
            20 << 20,
        );
        let src = mem(&img);
        let fs = Ext4::open(&src).unwrap();
        let big = fs
            .walk()
            .filter_map(|e| e.ok())
            .find(|e| e.path == b"big.bin")
            .unwrap();
        assert_eq!(fs.inode(big.inode).unwrap().flags() & FL_EXTENTS, 0);
        check(&fs, &tree);
        // 1 KiB blocks: the 20 MB reaches the triple-indirect block's
        // neighbourhood (12 + 256 + 65536 blocks is 64 MiB: double).
        let (_dir, img, tree) = image("ext2", "mkfs.ext4 -b 1024 -t ext2", 20 << 20);
        check(&Ext4::open(&mem(&img)).unwrap(), &tree);
    }

    #[test]
    fn unlinked_files_are_found_without_a_name() {
        let (dir, _, _) = image("unlinked", "mkfs.ext4 -b 1024", 1 << 10);
        // Unlink the secret's name only: its inode stays allocated.
        sh(
            &dir,
            "debugfs -w -R 'unlink /etc/sota/client.pem' fs.img >/dev/null 2>&1",
        );
        let img = std::fs::read(dir.join("fs.img")).unwrap();
        let src = mem(&img);
        let fs = Ext4::open(&src).unwrap();
        let mut walk = fs.walk();
        assert!(walk
            .by_ref()
            .all(|e| e.is_ok_and(|e| e.path != b"etc/sota/client.pem")));
        let found: Vec<u32> = fs.unlinked(walk.reached()).map(|r| r.unwrap()).collect();
        assert_eq!(found.len(), 1, "{found:?}");
        let mut data = Vec::new();
        fs.read(found[0]).unwrap().read_to_end(&mut data).unwrap();
        assert_eq!(data, SECRET);
    }

    #[test]
    fn bad_superblocks_are_errors() {
        assert!(Ext4::open(&mem(&[0u8; 4096])).is_err());
        assert!(Ext4::open(&mem(&[0u8; 100])).is_err());
        let (_dir, img, _) = image("super", "mkfs.ext4 -b 1024", 1 << 10);
        for (at, value) in [
            (0x418usize, 9u8),
            (0x420, 0),
            (0x428, 0),
            (0x458, 7),
            (0x400, 0),
        ] {
            let mut v = img.clone();
            v[at..at + 4].fill(0);
            v[at] = value;
            assert!(Ext4::open(&mem(&v)).is_err(), "field at {at:#x}");
        }
    }

    /// Everything a caller would do with an image; the number of steps.
    pub(crate) fn exercise(img: &[u8]) -> u64 {
        let src = mem(img);
        let Ok(fs) = Ext4::open(&src) else { return 0 };
        let mut steps = 0u64;
        let mut walk = fs.walk();
        let mut buf = vec![0u8; 65536];
        for entry in walk.by_ref() {
            steps += 1;
            let Ok(entry) = entry else { continue };
            match entry.kind {
                Kind::File => {
                    if let Ok(mut data) = fs.read(entry.inode) {
                        // Declared sizes can be huge holes: read a bounded
                        // amount, as the scanner's byte budget would.
                        let mut total = 0;
                        while let Ok(n) = data.read(&mut buf) {
                            if n == 0 || total > 64 << 20 {
                                break;
                            }
                            total += n;
                            steps += 1;
                        }
                    }
                }
                Kind::Symlink => {
                    let _ = fs.symlink(entry.inode);
                }
                _ => {}
            }
            let _ = fs.xattrs(entry.inode);
        }
        let reached = walk.reached().clone();
        steps += fs.unlinked(&reached).take(100_000).count() as u64;
        steps
    }

    #[test]
    fn hostile_images_end_in_ok_or_err() {
        let (_dir, img, _) = image(
            "hostile",
            "mkfs.ext4 -b 1024 -N 512 -O inline_data",
            40 << 10,
        );
        let src = mem(&img);
        let fs = Ext4::open(&src).unwrap();
        assert!(exercise(&img) > 300);
        // The metadata lives in the first blocks (superblock, descriptors,
        // bitmaps, inode table) and the directory blocks that follow.
        let _ = fs;
        let hot = [0..64 << 10, 0..img.len()];
        let mut rng = Rng(0x5eed_0e47);
        for i in 0..400 {
            let v = mutate(&img, &mut rng, &hot);
            let steps = exercise(&v);
            assert!(steps < 2_000_000, "variant {i}: {steps} steps");
        }
    }

    /// Writes an extent node header (and `entries` index entries all
    /// pointing at `child`) at `at`.
    fn index_node(img: &mut [u8], at: usize, depth: u16, max: u16, entries: u16, child: u32) {
        img[at..at + 2].copy_from_slice(&0xF30Au16.to_le_bytes());
        img[at + 2..at + 4].copy_from_slice(&entries.to_le_bytes());
        img[at + 4..at + 6].copy_from_slice(&max.to_le_bytes());
        img[at + 6..at + 8].copy_from_slice(&depth.to_le_bytes());
        for i in 0..usize::from(entries) {
            let e = at + 12 + 12 * i;
            img[e..e + 4].copy_from_slice(&0u32.to_le_bytes());
            img[e + 4..e + 8].copy_from_slice(&child.to_le_bytes());
            img[e + 8..e + 12].fill(0);
        }
    }

    #[test]
    fn extent_trees_that_loop_or_repeat_end() {
        let (_dir, img, _) = image("extent-loops", "mkfs.ext4 -b 1024", 1 << 20);
        let src = mem(&img);
        let fs = Ext4::open(&src).unwrap();
        let big = fs
            .walk()
            .map(|e| e.unwrap())
            .find(|e| e.path == b"big.bin")
            .unwrap();
        // Where its inode lies, and two free blocks at the image's end.
        let index = u64::from(big.inode - 1);
        let desc = fs
            .descriptor(index / u64::from(fs.inodes_per_group))
            .unwrap();
        let table = fs.desc_block(&desc, 0x8, 0x28);
        let inode_at =
            (table * 1024 + (index % u64::from(fs.inodes_per_group)) * fs.inode_size) as usize;
        let (b, c) = (fs.blocks as u32 - 1, fs.blocks as u32 - 2);
        let read = |v: &[u8]| {
            let src = mem(v);
            let fs = Ext4::open(&src).unwrap();
            let mut out = Vec::new();
            fs.read(big.inode)
                .unwrap()
                .read_to_end(&mut out)
                .map(|_| out)
        };
        // An index node that points at itself: its depth cannot match.
        let mut v = img.clone();
        index_node(&mut v, inode_at + 0x28, 2, 4, 1, b);
        index_node(&mut v, b as usize * 1024, 1, 84, 1, b);
        let err = read(&v).unwrap_err();
        assert!(err.to_string().contains("wrong depth"), "{err}");
        // A root whose 4 entries all lead to one index node whose 84
        // entries all lead to one leaf: 4 * 84 visits of the same extent,
        // each behind the position after the first, then holes.
        let mut v = img.clone();
        index_node(&mut v, inode_at + 0x28, 2, 4, 4, c);
        index_node(&mut v, c as usize * 1024, 1, 84, 84, b);
        let leaf = b as usize * 1024;
        index_node(&mut v, leaf, 0, 84, 1, 0);
        v[leaf + 12..leaf + 24].copy_from_slice(&[0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]);
        v[leaf + 20..leaf + 24].copy_from_slice(&(b - 10).to_le_bytes());
        let data = read(&v).unwrap();
        assert_eq!(data.len() as u64, big.size);
        assert!(data[2048..].iter().all(|&x| x == 0));
    }

    #[test]
    fn loops_end() {
        // A directory that holds itself: the walk ends.
        let (dir, _, _) = image("loops", "mkfs.ext4 -b 1024", 1 << 20);
        sh(
            &dir,
            "debugfs -w -R 'ln /etc /etc/sota/again' fs.img >/dev/null 2>&1",
        );
        let img = std::fs::read(dir.join("fs.img")).unwrap();
        let src = mem(&img);
        let fs = Ext4::open(&src).unwrap();
        let paths: Vec<Vec<u8>> = fs.walk().map(|e| e.unwrap().path).collect();
        assert!(paths.contains(&b"etc/sota/again".to_vec()));
        assert!(!paths.iter().any(|p| p.starts_with(b"etc/sota/again/")));
    }
}
