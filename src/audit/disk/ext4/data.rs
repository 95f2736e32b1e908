//! A file's data as a stream: inline in the inode, through an extent tree
//! or through a classic block map; holes and uninitialised extents read as
//! zeros, never past the declared size.

use std::io::{self, Read};

use super::fs::{Ext4, Inode, FL_EXTENTS, FL_INLINE_DATA, I_BLOCK_LEN};
use crate::audit::disk::common::{bad, bytes, le16, le32, Kind};

/// The kernel's `EXT4_MAX_EXTENT_DEPTH`.
const MAX_EXTENT_DEPTH: u16 = 5;
/// Extent tree nodes read per file, in bytes of blocks: 64 MiB is 16384
/// nodes of 4 KiB, about 5 million extents (a real file has a few
/// thousand at most).
const MAX_EXTENT_NODE_BYTES: u64 = 64 << 20;

impl<'s> Ext4<'s> {
    /// A regular file's data, streamed: at most its declared size.
    pub fn read(&self, number: u32) -> io::Result<Data<'_>> {
        let inode = self.inode(number)?;
        if inode.kind() != Kind::File {
            return Err(bad("the inode is not a regular file"));
        }
        self.data(&inode)
    }

    /// The data of any inode, by the way its flags say it is stored.
    pub(super) fn data(&self, inode: &Inode) -> io::Result<Data<'_>> {
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
            keep_zeros: None,
            zeros: 0,
        })
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
    /// With [`Data::compact_holes`]: how many zeros of a run of holes and
    /// uninitialised extents are given; the rest is skipped.
    keep_zeros: Option<u64>,
    /// Zeros given since the last bytes from the disk.
    zeros: u64,
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

    /// Gives at most `keep` zeros of each run of holes and uninitialised
    /// extents, and skips the rest: a sparse file's holes hold nothing to
    /// search, and a hostile inode can declare terabytes of them in a few
    /// bytes. Whatever straddles a hole's edge still reads as it would
    /// whole, for a pattern of at most `keep` bytes. Extent-mapped files
    /// only (a block map's hole is found a block at a time); the stream is
    /// then shorter than [`Data::size`].
    pub fn compact_holes(mut self, keep: u64) -> Self {
        self.keep_zeros = Some(keep);
        self
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
        let compact = self
            .keep_zeros
            .filter(|_| matches!(self.map, Map::Extents { .. }));
        // Each turn either gives bytes or skips to the end of a run of
        // zeros, so the turns are at most the file's extents.
        loop {
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
            if compact.is_some_and(|keep| self.zeros >= keep) {
                if let Run::Zeros(blocks) = self.run(l, u64::MAX / bs)? {
                    // The run's end, past the position: at least one block on.
                    self.pos = l.saturating_add(blocks).saturating_mul(bs).min(self.size);
                    continue;
                }
            }
            return self.read_run(buf, l, skip, want);
        }
    }
}

impl Data<'_> {
    /// Bytes of the run at logical block `l` (`skip` bytes into it) into
    /// `buf`, at most `want`.
    fn read_run(&mut self, buf: &mut [u8], l: u64, skip: u64, want: usize) -> io::Result<usize> {
        let bs = self.fs.block_size;
        let max_blocks = (skip + want as u64).div_ceil(bs);
        let n = match self.run(l, max_blocks)? {
            Run::Zeros(blocks) => {
                let n = (blocks * bs - skip).min(want as u64) as usize;
                buf.iter_mut().take(n).for_each(|b| *b = 0);
                self.zeros = self.zeros.saturating_add(n as u64);
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
                self.zeros = 0;
                n
            }
        };
        self.pos += n as u64;
        Ok(n)
    }
}
