//! A pack's `.idx` (version 2, gitformat-pack), read only when it is well
//! formed: ids sorted, every offset inside the pack, within the limits.
//! It finds objects by id and names the object at an offset.

use std::fs::File;
use std::path::Path;

use super::common::Limits;
use crate::audit::source::{FileAt, ReadAt};

/// A `.idx` version 2, checked.
pub(super) struct Idx {
    /// Sorted, strictly.
    pub(super) ids: Vec<[u8; 20]>,
    /// `offsets[i]` is where `ids[i]` is.
    pub(super) offsets: Vec<u64>,
    /// (offset, position in `ids`), sorted by offset.
    by_offset: Vec<(u64, usize)>,
}

impl Idx {
    /// Reads `path` for a pack of `pack_len` bytes; `None` when it is
    /// missing, not version 2, larger than the limits or not consistent.
    pub(super) fn read(path: &Path, pack_len: u64, limits: &Limits) -> Option<Idx> {
        let file = File::open(path).ok()?;
        let meta = file.metadata().ok()?;
        if !meta.is_file() {
            return None;
        }
        let src = FileAt {
            file: &file,
            len: meta.len(),
        };
        let mut head = [0u8; 8 + 256 * 4];
        src.read_exact_at(&mut head, 0).ok()?;
        if head.get(..8)? != b"\xfftOc\x00\x00\x00\x02" {
            return None;
        }
        let mut last = 0u32;
        for i in 0..256 {
            let b = head.get(8 + i * 4..12 + i * 4)?;
            let v = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            if v < last {
                return None;
            }
            last = v;
        }
        let n = usize::try_from(last).ok()?;
        if n as u64 > limits.objects {
            return None;
        }
        // ids, CRCs, offsets and the two trailing checksums must be there
        // before anything is allocated.
        let need = 1032u64
            .checked_add((n as u64).checked_mul(28)?)?
            .checked_add(40)?;
        if src.len < need {
            return None;
        }
        let mut raw = vec![0u8; n.checked_mul(20)?];
        src.read_exact_at(&mut raw, 1032).ok()?;
        let ids: Vec<[u8; 20]> = raw
            .chunks_exact(20)
            .map(|c| {
                let mut id = [0u8; 20];
                id.copy_from_slice(c);
                id
            })
            .collect();
        if ids.windows(2).any(|w| w[0] >= w[1]) {
            return None;
        }
        let at_offsets = 1032 + (n as u64) * 24;
        let mut small = vec![0u8; n.checked_mul(4)?];
        src.read_exact_at(&mut small, at_offsets).ok()?;
        let at_large = at_offsets + (n as u64) * 4;
        let mut offsets = Vec::with_capacity(n);
        for c in small.chunks_exact(4) {
            let v = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
            let offset = if v & 0x8000_0000 == 0 {
                u64::from(v)
            } else {
                let at = at_large.checked_add(u64::from(v & 0x7fff_ffff).checked_mul(8)?)?;
                if at.checked_add(8 + 40)? > src.len {
                    return None;
                }
                let mut b = [0u8; 8];
                src.read_exact_at(&mut b, at).ok()?;
                u64::from_be_bytes(b)
            };
            if offset < 12 || offset >= pack_len.saturating_sub(20) {
                return None;
            }
            offsets.push(offset);
        }
        let mut by_offset: Vec<(u64, usize)> =
            offsets.iter().enumerate().map(|(i, &o)| (o, i)).collect();
        by_offset.sort_unstable();
        Some(Idx {
            ids,
            offsets,
            by_offset,
        })
    }

    pub(super) fn find(&self, id: &[u8; 20]) -> Option<u64> {
        let i = self.ids.binary_search(id).ok()?;
        self.offsets.get(i).copied()
    }

    pub(super) fn id_at(&self, offset: u64) -> Option<[u8; 20]> {
        let i = self
            .by_offset
            .binary_search_by(|(o, _)| o.cmp(&offset))
            .ok()?;
        let &(_, at) = self.by_offset.get(i)?;
        self.ids.get(at).copied()
    }

    pub(super) fn next_after(&self, offset: u64) -> Option<u64> {
        let i = self.by_offset.partition_point(|(o, _)| *o <= offset);
        self.by_offset.get(i).map(|(o, _)| *o)
    }
}
