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

use super::common::{le16, le32, le64};
use super::{ext4, vfat};
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::disk::ext4::Ext4;
    use crate::audit::disk::testkit::{mem, mutate, scratch, sh, Rng, Scratch, SECRET};
    use crate::audit::disk::vfat::Vfat;
    use crate::audit::disk::Kind;
    use crate::audit::source::Slice;
    use std::io::Read;

    const LINUX: &str = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";
    const ESP: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
    const SWAP: &str = "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F";

    /// A 4 MiB ext4 and a 2 MiB FAT image, each holding `etc/sota/client.pem`
    /// (the ext4 one) or `sota/client.pem` (the FAT one), then a 10 MiB
    /// disk partitioned by `table` (an sfdisk script) with the ext4 image
    /// at sector 2048 and the FAT image at `fat_at`.
    fn disk(name: &str, table: &str, fat_at: u64) -> (Scratch, Vec<u8>) {
        // Tests run in parallel: one folder per call.
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = scratch(&format!("{name}-{n}"));
        std::fs::write(dir.join("secret"), SECRET).unwrap();
        sh(
            &dir,
            &format!(
                "mkdir -p tree/etc/sota fat/sota && cp secret tree/etc/sota/client.pem && \
                 cp secret fat/sota/client.pem && \
                 mkfs.ext4 -q -F -b 1024 -d tree ext.img 4096k >/dev/null && \
                 mkfs.vfat -C fat.img 2048 >/dev/null && \
                 MTOOLS_SKIP_CHECK=1 mcopy -s -i fat.img fat/sota ::/ && \
                 truncate -s 10M disk.img && printf '{table}' | sfdisk -q disk.img && \
                 dd if=ext.img of=disk.img bs=512 seek=2048 conv=notrunc status=none && \
                 dd if=fat.img of=disk.img bs=512 seek={fat_at} conv=notrunc status=none"
            ),
        );
        let img = std::fs::read(dir.join("disk.img")).unwrap();
        (dir, img)
    }

    fn gpt_disk() -> (Scratch, Vec<u8>) {
        disk(
            "gpt",
            &format!(
                "label: gpt\\nstart=2048, size=8192, type={LINUX}\\n\
                 start=10240, size=4096, type={ESP}\\nstart=14336, size=2048, type={SWAP}\\n"
            ),
            10240,
        )
    }

    fn mbr_disk() -> (Scratch, Vec<u8>) {
        disk(
            "mbr",
            "label: dos\\nstart=2048, size=8192, type=83\\nstart=10240, size=8192, type=5\\n\
             start=11264, size=4096, type=c\\nstart=16384, size=2048, type=82\\n",
            11264,
        )
    }

    /// The secret read back from each searchable partition: the paths
    /// where it was found.
    fn secrets(src: &dyn ReadAt, parts: &[Partition]) -> Vec<String> {
        let mut found = Vec::new();
        for p in parts {
            let slice = Slice {
                source: src,
                start: p.start,
                len: p.len,
            };
            match p.kind {
                PartKind::Ext => {
                    let fs = Ext4::open(&slice).unwrap();
                    for e in fs.walk() {
                        let e = e.unwrap();
                        if e.kind == Kind::File {
                            let mut data = Vec::new();
                            fs.read(e.inode).unwrap().read_to_end(&mut data).unwrap();
                            if data == SECRET {
                                found.push(format!(
                                    "p{}!{}",
                                    p.index,
                                    String::from_utf8_lossy(&e.path)
                                ));
                            }
                        }
                    }
                }
                PartKind::Vfat => {
                    let fs = Vfat::open(&slice).unwrap();
                    for e in fs.walk() {
                        let e = e.unwrap();
                        if e.kind == Kind::File {
                            let mut data = Vec::new();
                            fs.read(e.cluster, e.size)
                                .unwrap()
                                .read_to_end(&mut data)
                                .unwrap();
                            if data == SECRET {
                                found.push(format!(
                                    "p{}!{}",
                                    p.index,
                                    String::from_utf8_lossy(&e.path)
                                ));
                            }
                        }
                    }
                }
                PartKind::Other(_) => {}
            }
        }
        found
    }

    /// The partitions of `img` (index, start, length, kind) and where the
    /// test secret is in them.
    #[allow(clippy::type_complexity)]
    fn found(img: &[u8]) -> (Vec<(usize, u64, u64, PartKind)>, Vec<String>) {
        let src = mem(img);
        let parts = table(&src).unwrap();
        let got = parts
            .iter()
            .map(|p| (p.index, p.start, p.len, p.kind.clone()))
            .collect();
        (got, secrets(&src, &parts))
    }

    #[test]
    fn gpt_partitions_are_found_and_told_by_content() {
        let (_dir, img) = gpt_disk();
        let (got, secrets) = found(&img);
        assert_eq!(
            got,
            [
                (1, 2048 * 512, 8192 * 512, PartKind::Ext),
                (2, 10240 * 512, 4096 * 512, PartKind::Vfat),
                (
                    3,
                    14336 * 512,
                    2048 * 512,
                    PartKind::Other(format!("GPT type {SWAP} (Linux swap)"))
                ),
            ]
        );
        assert_eq!(secrets, ["p1!etc/sota/client.pem", "p2!sota/client.pem"]);
    }

    #[test]
    fn mbr_partitions_and_logical_ones_are_found() {
        let (_dir, img) = mbr_disk();
        let (got, secrets) = found(&img);
        assert_eq!(
            got,
            [
                (1, 2048 * 512, 8192 * 512, PartKind::Ext),
                (5, 11264 * 512, 4096 * 512, PartKind::Vfat),
                (
                    6,
                    16384 * 512,
                    2048 * 512,
                    PartKind::Other("MBR type 0x82 (Linux swap)".into())
                ),
            ]
        );
        assert_eq!(secrets, ["p1!etc/sota/client.pem", "p5!sota/client.pem"]);
    }

    #[test]
    fn bare_file_systems_have_no_table() {
        let (dir, _) = mbr_disk();
        for name in ["ext.img", "fat.img"] {
            let img = std::fs::read(dir.join(name)).unwrap();
            assert_eq!(table(&mem(&img)), None, "{name}");
        }
        assert_eq!(table(&mem(&[0u8; 4096])), None);
    }

    #[test]
    fn partitions_past_the_end_are_clipped_or_kept_empty() {
        let (_dir, img) = gpt_disk();
        // Cut inside the FAT partition: it is clipped, the next is empty.
        let cut = &img[..11000 * 512];
        let parts = table(&mem(cut)).unwrap();
        assert_eq!(parts[0].note, None);
        assert_eq!(parts[1].len, (11000 - 10240) * 512);
        assert!(parts[1].note.as_deref().unwrap().contains("clipped"));
        assert_eq!(parts[2].len, 0);
        assert!(parts[2].note.as_deref().unwrap().contains("not searched"));
    }

    #[test]
    fn gpt_with_4096_byte_sectors() {
        // The same table written for 4 KiB sectors: header at 4096.
        let (_dir, img) = gpt_disk();
        let mut big = vec![0u8; img.len() * 8];
        // Header and entries moved: LBA n of 512 becomes LBA n of 4096.
        big[4096..4096 + 512].copy_from_slice(&img[512..1024]);
        big[2 * 4096..2 * 4096 + 16384].copy_from_slice(&img[1024..1024 + 16384]);
        big[2048 * 4096..2048 * 4096 + (4 << 20)]
            .copy_from_slice(&img[2048 * 512..(2048 * 512) + (4 << 20)]);
        let parts = table(&mem(&big)).unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(
            (parts[0].start, parts[0].len, &parts[0].kind),
            (2048 * 4096, 8192 * 4096, &PartKind::Ext)
        );
    }

    #[test]
    fn an_ebr_chain_that_loops_or_runs_long_ends() {
        let mut img = vec![0u8; 1 << 20];
        let entry = |img: &mut [u8], sector: usize, slot: usize, code: u8, lba: u32, count: u32| {
            let at = sector * 512 + 446 + 16 * slot;
            img[at + 4] = code;
            img[at + 8..at + 12].copy_from_slice(&lba.to_le_bytes());
            img[at + 12..at + 16].copy_from_slice(&count.to_le_bytes());
            img[sector * 512 + 510..sector * 512 + 512].copy_from_slice(&[0x55, 0xAA]);
        };
        entry(&mut img, 0, 0, 0x05, 1, 2000);
        // EBR at 1 names a partition and points back at itself.
        entry(&mut img, 1, 0, 0x83, 1, 1);
        entry(&mut img, 1, 1, 0x05, 0, 1);
        assert_eq!(table(&mem(&img)).unwrap().len(), 1);
        // A chain of 1000 EBRs: at most MAX_LOGICAL are followed.
        for s in 1..1001u32 {
            entry(&mut img, s as usize, 0, 0x83, 1, 1);
            entry(&mut img, s as usize, 1, 0x05, s, 1);
        }
        assert_eq!(table(&mem(&img)).unwrap().len(), MAX_LOGICAL);
    }

    #[test]
    fn hostile_tables_end_in_ok_or_err() {
        let mut rng = Rng(0x9a27);
        let (_g, gpt) = gpt_disk();
        let (_m, mbr) = mbr_disk();
        let mut buf = vec![0u8; 65536];
        for (name, img) in [("gpt", gpt), ("mbr", mbr)] {
            for i in 0..150 {
                // The tables, EBRs and the file systems' first blocks.
                let hot = [
                    0..34 * 512,
                    10240 * 512..10241 * 512,
                    2048 * 512..2080 * 512,
                    0..img.len(),
                ];
                let v = mutate(&img, &mut rng, &hot);
                let src = mem(&v);
                let mut steps = 0u64;
                for p in table(&src).unwrap_or_default() {
                    let slice = Slice {
                        source: &src as &dyn ReadAt,
                        start: p.start,
                        len: p.len,
                    };
                    if let Ok(fs) = Ext4::open(&slice) {
                        for e in fs.walk() {
                            steps += 1;
                            if let Ok(mut d) = e.and_then(|e| fs.read(e.inode)) {
                                while matches!(d.read(&mut buf), Ok(n) if n > 0 && steps < 1 << 20)
                                {
                                    steps += 1;
                                }
                            }
                        }
                    }
                    if let Ok(fs) = Vfat::open(&slice) {
                        for e in fs.walk() {
                            steps += 1;
                            if let Ok(mut d) = e.and_then(|e| fs.read(e.cluster, e.size)) {
                                while matches!(d.read(&mut buf), Ok(n) if n > 0) {
                                    steps += 1;
                                }
                            }
                        }
                    }
                }
                assert!(steps < 1 << 20, "{name} variant {i}: {steps} steps");
            }
        }
    }
}
