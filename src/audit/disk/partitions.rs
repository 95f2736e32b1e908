//! Partition tables: GPT (UEFI spec, chapter 5: the header at LBA 1, tried
//! with 512- then 4096-byte sectors, CRCs not checked) and MBR (`55 AA` at
//! 510, four entries at 446, extended partitions as a chain of EBRs).
//!
//! A partition is told by its content first (an ext superblock, a FAT boot
//! sector), its type code second (named in [`PartKind::Other`]). A
//! partition that reaches past the image's end is clipped to it; one that
//! starts past the end is kept with length 0; both say why in
//! [`Partition::note`].
//!
//! Bounds: GPT entries at most [`MAX_GPT_ENTRIES`] of at most 4 KiB each;
//! an EBR chain at most [`MAX_LOGICAL`] links, each EBR visited once.

use std::collections::HashSet;
use std::fmt::Write as _;

use super::{ext4, le16, le32, le64, vfat};
use crate::audit::source::ReadAt;

/// GPT entries read (the usual array has 128; 16 KiB at 128 bytes each).
pub const MAX_GPT_ENTRIES: u32 = 1024;
/// Logical partitions followed along an EBR chain.
pub const MAX_LOGICAL: usize = 128;

/// What a partition holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartKind {
    /// An ext2/3/4 superblock.
    Ext,
    /// A FAT boot sector.
    Vfat,
    /// Neither: its type, as the table names it.
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// 1-based: the MBR slot (1–4; logical partitions from 5, as Linux
    /// numbers them) or the GPT entry.
    pub index: usize,
    /// Bytes from the image's start.
    pub start: u64,
    /// Bytes, within the image.
    pub len: u64,
    pub kind: PartKind,
    /// Why the partition was clipped or left empty, when it was.
    pub note: Option<String>,
}

/// The partitions of a GPT or MBR image; `None` when the image has no
/// partition table (a bare file system, a FAT boot sector, anything else).
pub fn table(src: &dyn ReadAt) -> Option<Vec<Partition>> {
    for sector in [512u64, 4096] {
        if let Some(parts) = gpt(src, sector) {
            return Some(parts);
        }
    }
    mbr(src)
}

/// A partition from its table's extent, clipped to the image and told by
/// its content.
fn partition(src: &dyn ReadAt, index: usize, start: u64, len: u64, type_name: String) -> Partition {
    let size = src.len();
    let (len, note) = if start >= size {
        (
            0,
            Some("starts past the end of the image: not searched".to_owned()),
        )
    } else if len > size - start {
        (
            size - start,
            Some("reaches past the end of the image: clipped to it".to_owned()),
        )
    } else {
        (len, None)
    };
    let slice = crate::audit::source::Slice {
        source: src,
        start,
        len,
    };
    let mut boot = [0u8; 512];
    let kind = if len == 0 {
        PartKind::Other(type_name)
    } else if ext4::sniff(&slice) {
        PartKind::Ext
    } else if slice.read_exact_at(&mut boot, 0).is_ok() && vfat::sniff(&boot) {
        PartKind::Vfat
    } else {
        PartKind::Other(type_name)
    };
    Partition {
        index,
        start,
        len,
        kind,
        note,
    }
}

fn gpt(src: &dyn ReadAt, sector: u64) -> Option<Vec<Partition>> {
    let mut head = [0u8; 92];
    src.read_exact_at(&mut head, sector).ok()?;
    if head.get(..8)? != b"EFI PART" {
        return None;
    }
    let entries_lba = le64(&head, 72);
    let count = le32(&head, 80).min(MAX_GPT_ENTRIES);
    let entry_size = le32(&head, 84);
    if !(128..=4096).contains(&entry_size) || entry_size % 8 != 0 {
        return None;
    }
    let array_at = entries_lba.checked_mul(sector)?;
    let mut parts = Vec::new();
    let mut entry = vec![0u8; 128];
    for i in 0..count {
        let at = array_at.checked_add(u64::from(i) * u64::from(entry_size))?;
        if src.read_exact_at(&mut entry, at).is_err() {
            break;
        }
        let type_guid = entry.get(..16)?;
        if type_guid.iter().all(|&b| b == 0) {
            continue;
        }
        let first = le64(&entry, 32);
        let last = le64(&entry, 40);
        let (Some(start), Some(len)) = (
            first.checked_mul(sector),
            last.checked_sub(first)
                .and_then(|n| n.checked_add(1))
                .and_then(|n| n.checked_mul(sector)),
        ) else {
            parts.push(Partition {
                index: i as usize + 1,
                start: 0,
                len: 0,
                kind: PartKind::Other(gpt_type(type_guid)),
                note: Some("its extent is inverted or overflows: not searched".to_owned()),
            });
            continue;
        };
        parts.push(partition(
            src,
            i as usize + 1,
            start,
            len,
            gpt_type(type_guid),
        ));
    }
    Some(parts)
}

/// A GPT type GUID as text (mixed-endian, as tools print it), with the
/// name of the few types an image holds.
fn gpt_type(g: &[u8]) -> String {
    let mut text = String::new();
    for (i, at) in [3usize, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15]
        .iter()
        .enumerate()
    {
        if matches!(i, 4 | 6 | 8 | 10) {
            text.push('-');
        }
        let _ = write!(text, "{:02X}", g.get(*at).copied().unwrap_or(0));
    }
    let name = match text.as_str() {
        "0FC63DAF-8483-4772-8E79-3D69D8477DE4" => " (Linux file system, no ext superblock)",
        "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" => " (EFI system, no FAT boot sector)",
        "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7" => " (basic data, no FAT boot sector)",
        "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F" => " (Linux swap)",
        _ => "",
    };
    format!("GPT type {text}{name}")
}

fn mbr_type(code: u8) -> String {
    let name = match code {
        0x83 => " (Linux, no ext superblock)",
        0x01 | 0x04 | 0x06 | 0x0B | 0x0C | 0x0E | 0xEF => " (FAT, no FAT boot sector)",
        0x82 => " (Linux swap)",
        0xEE => " (GPT protective, no GPT header found)",
        _ => "",
    };
    format!("MBR type 0x{code:02x}{name}")
}

fn is_extended(code: u8) -> bool {
    matches!(code, 0x05 | 0x0F | 0x85)
}

/// The four 16-byte entries of an MBR or EBR: (status, type, first LBA,
/// sectors).
fn entries(sector: &[u8]) -> [(u8, u8, u64, u64); 4] {
    let mut out = [(0, 0, 0, 0); 4];
    for (i, e) in out.iter_mut().enumerate() {
        let at = 446 + 16 * i;
        let raw = sector.get(at..at + 16).unwrap_or(&[]);
        *e = (
            raw.first().copied().unwrap_or(0),
            raw.get(4).copied().unwrap_or(0),
            u64::from(le32(raw, 8)),
            u64::from(le32(raw, 12)),
        );
    }
    out
}

fn mbr(src: &dyn ReadAt) -> Option<Vec<Partition>> {
    const SECTOR: u64 = 512;
    let mut sector = [0u8; 512];
    src.read_exact_at(&mut sector, 0).ok()?;
    if le16(&sector, 510) != 0xAA55 {
        return None;
    }
    let slots = entries(&sector);
    // A FAT boot sector ends in 55 AA too: an MBR's statuses are 0 or
    // 0x80 and it names at least one partition.
    if slots.iter().any(|e| e.0 != 0 && e.0 != 0x80)
        || slots.iter().all(|e| e.1 == 0)
        || vfat::sniff(&sector)
    {
        return None;
    }
    let mut parts = Vec::new();
    for (i, &(_, code, lba, count)) in slots.iter().enumerate() {
        if code == 0 {
            continue;
        }
        let (start, len) = (lba * SECTOR, count * SECTOR);
        if is_extended(code) {
            logical(src, lba, &mut parts);
            continue;
        }
        parts.push(partition(src, i + 1, start, len, mbr_type(code)));
    }
    Some(parts)
}

/// The logical partitions of the extended partition at `base` (LBA): each
/// EBR's first entry is a partition relative to that EBR, its second the
/// next EBR relative to `base`.
fn logical(src: &dyn ReadAt, base: u64, parts: &mut Vec<Partition>) {
    const SECTOR: u64 = 512;
    let mut seen = HashSet::new();
    let mut ebr = base;
    for n in 0..MAX_LOGICAL {
        if !seen.insert(ebr) {
            break;
        }
        let mut sector = [0u8; 512];
        if src.read_exact_at(&mut sector, ebr * SECTOR).is_err() || le16(&sector, 510) != 0xAA55 {
            break;
        }
        let [(_, code, rel, count), (_, next_code, next_rel, _), _, _] = entries(&sector);
        if code != 0 {
            let lba = ebr + rel;
            parts.push(partition(
                src,
                5 + n,
                lba * SECTOR,
                count * SECTOR,
                mbr_type(code),
            ));
        }
        if next_code == 0 || !is_extended(next_code) {
            break;
        }
        ebr = base + next_rel;
    }
}
