//! The directory walk from the root (bounded by [`WalkLimits`], with a
//! visited set of directories), and the allocated regular files no
//! directory names ([`Ext4::unlinked`]).

use std::collections::HashSet;
use std::io;

use super::data::Data;
use super::fs::{
    Ext4, Inode, FL_INLINE_DATA, INCOMPAT_FILETYPE, I_BLOCK_LEN, ROOT, RO_COMPAT_GDT_CSUM,
    RO_COMPAT_METADATA_CSUM,
};
use crate::audit::disk::common::{bad, le16, le32, read_full, Kind};

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

/// Regular-file inodes [`Ext4::unlinked`] examines per image.
const MAX_INODES_EXAMINED: u64 = 1 << 24;

impl<'s> Ext4<'s> {
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
