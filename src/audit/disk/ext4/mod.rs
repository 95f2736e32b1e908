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
//!
//! - `fs.rs`: the superblock, the group descriptors, inodes, symlink
//!   targets and extended attributes.
//! - `cache.rs`: the metadata cache the descriptors and inodes are read
//!   through.
//! - `data.rs`: a file's data as a stream, through extents, block maps or
//!   inline data.
//! - `dir.rs`: the directory walk, and the allocated files no directory
//!   names.
//! - `tests.rs`: the unit tests, on images made by mkfs.ext4.

mod cache;
mod data;
mod dir;
mod fs;

pub use fs::{sniff, Ext4};
// What Ext4's methods take and return, at the paths they had before the
// split (no caller names them today).
#[allow(unused_imports)]
pub use {
    data::Data,
    dir::{Entry, Unlinked, Walk, WalkLimits},
    fs::ROOT,
};

#[cfg(test)]
mod tests;
