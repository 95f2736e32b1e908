//! The metadata cache: group descriptors and inode tables read through
//! direct-mapped chunks of the image, each read whole once.

use std::io;

use crate::audit::disk::common::bad;
use crate::audit::source::ReadAt;

/// Group descriptors and inodes are read through a cache of this many
/// aligned chunks of the image, each [`META_CHUNK`] bytes (4 MiB at most):
/// a walk reads each inode three or four times (its kind, its data, its
/// link target, its extended attributes) and its group's descriptor each
/// time, which were two small reads each (85,000 `pread`s for 13,084
/// files before the cache, 4,000 after; docs/benchmark.md).
const META_SLOTS: usize = 256;
pub(super) const META_CHUNK: u64 = 16 * 1024;

/// Direct-mapped chunks of the image holding metadata (descriptors,
/// inode tables): each slot remembers the chunk it holds.
#[derive(Default)]
pub(super) struct MetaCache {
    slots: Vec<Option<(u64, Vec<u8>)>>,
}

impl MetaCache {
    /// Fills `buf` from byte `at`, through the metadata cache: a read that
    /// does not straddle two chunks is served from its chunk, read whole
    /// once (shorter at the image's end).
    pub(super) fn read(&mut self, src: &dyn ReadAt, buf: &mut [u8], at: u64) -> io::Result<()> {
        let len = buf.len() as u64;
        let chunk = at / META_CHUNK;
        let end = at
            .checked_add(len)
            .ok_or_else(|| bad("an offset overflows"))?;
        if len == 0 || len > META_CHUNK || (end - 1) / META_CHUNK != chunk {
            return src.read_exact_at(buf, at);
        }
        if self.slots.is_empty() {
            self.slots.resize_with(META_SLOTS, || None);
        }
        let slot = (chunk % META_SLOTS as u64) as usize;
        let cached = match self.slots.get_mut(slot) {
            Some(s) => s,
            None => return src.read_exact_at(buf, at),
        };
        if !matches!(cached, Some((c, _)) if *c == chunk) {
            let start = chunk * META_CHUNK;
            let room = src.len().saturating_sub(start).min(META_CHUNK) as usize;
            let mut data = match cached.take() {
                Some((_, mut old)) => {
                    old.resize(room, 0);
                    old
                }
                None => vec![0u8; room],
            };
            src.read_exact_at(&mut data, start)?;
            *cached = Some((chunk, data));
        }
        let data = match cached {
            Some((_, data)) => data,
            None => return src.read_exact_at(buf, at),
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
}
