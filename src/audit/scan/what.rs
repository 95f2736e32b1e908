//! What a level is, told by its first bytes (a compressed stream, an
//! archive, a disk image, an OSTree object, plain bytes), and whether a
//! file given as the root holds a root file system.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;

use crate::audit::decode::{self, Codec};
use crate::audit::disk::vfat;
use crate::audit::findings::Limits;
use crate::audit::formats::{self, Format};

/// Bytes read before a level is told by its content (a tar may start
/// with a zero block: `tar -i` reads past it; an ext superblock's magic is
/// at 1080).
pub(super) const HEAD: usize = 2048;
/// unzip looks for the end record in the last 65,557 bytes.
pub(super) const ZIP_TAIL: u64 = 65_557;

/// Whether these first bytes (2 KiB) start a disk or file system image:
/// an ext superblock, a GPT header, a FAT boot sector, or an MBR whose
/// entries look like one (status 0 or 0x80, a type, a start).
fn is_disk(head: &[u8]) -> bool {
    let ext = head.get(1080..1082) == Some(&[0x53, 0xef][..]);
    let gpt = head.get(512..520) == Some(&b"EFI PART"[..]);
    let fat = head.get(..512).is_some_and(vfat::sniff);
    let mbr = head.get(510..512) == Some(&[0x55, 0xaa][..])
        && head.get(446..510).is_some_and(|table| {
            let entries: Vec<&[u8]> = table.chunks(16).collect();
            entries.iter().all(|e| e[0] == 0 || e[0] == 0x80)
                && entries
                    .iter()
                    .any(|e| e[4] != 0 && e[8..12] != [0, 0, 0, 0])
        });
    ext || gpt || fat || mbr
}

/// What a level is, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum What {
    Compressed(Codec),
    Archive(Format),
    /// An OSTree static delta part compressed with xz (`x`, then xz).
    DeltaPart,
    /// An OSTree `.filez` object (told by its name: it has no magic).
    Filez,
    /// A disk image (a partition table) or a file system image (ext2/3/4,
    /// FAT): read at any offset.
    Disk,
    Plain,
}

pub(super) fn what_is(head: &[u8], whole_file: bool) -> What {
    let zero_block = head.len() >= 1024 && head[..512].iter().all(|&b| b == 0);
    if zero_block && formats::sniff(&head[512..]) == Some(Format::Tar) {
        return What::Archive(Format::Tar);
    }
    if head.len() > 7 && head[0] == b'x' && head[1..].starts_with(b"\xfd7zXZ\x00") {
        return What::DeltaPart;
    }
    if is_disk(head) {
        return What::Disk;
    }
    if let Some(f) = formats::sniff(head) {
        What::Archive(f)
    } else if let Some(c) = decode::sniff(head, whole_file) {
        What::Compressed(c)
    } else {
        What::Plain
    }
}

/// Whether a file given as the root holds a root file system: an archive
/// (tar, cpio, zip, ar, rpm), plain or under compression. `Err(why)`
/// otherwise, worded without a byte of the file.
pub fn root_kind(file: &mut File, limits: &Limits) -> io::Result<Result<(), String>> {
    let size = file.metadata()?.len();
    let mut head = Vec::with_capacity(HEAD);
    (&*file).take(HEAD as u64).read_to_end(&mut head)?;
    let mut what = what_is(&head, false);
    if what == What::Plain && size <= limits.container_bytes {
        let from = size.saturating_sub(ZIP_TAIL);
        let mut tail = vec![0u8; (size - from) as usize];
        file.read_exact_at(&mut tail, from)?;
        if formats::zip::find(&tail) {
            return Ok(Ok(()));
        }
    }
    let mut codecs = Vec::new();
    // Compressed: the content's first bytes, through at most two layers
    // (`.tar.gz`, `.cpio.gz.xz`).
    while let What::Compressed(codec) = what {
        if codecs.len() == 2 {
            break;
        }
        codecs.push(codec);
        let mut clone = file.try_clone()?;
        clone.seek(SeekFrom::Start(0))?;
        let mut chain: Box<dyn Read> = Box::new(clone);
        for &c in &codecs {
            match decode::open(c, chain, limits.dictionary) {
                Ok(d) => chain = Box::new(d),
                Err(refused) => {
                    return Ok(Err(format!(
                        "is {} data that cannot be read ({})",
                        c.name(),
                        refused.0
                    )))
                }
            }
        }
        let mut inner = Vec::with_capacity(HEAD);
        // A damaged stream gives what it gave before the damage.
        let _ = chain.take(HEAD as u64).read_to_end(&mut inner);
        what = what_is(&inner, false);
    }
    file.seek(SeekFrom::Start(0))?;
    match (what, codecs.last()) {
        (What::Archive(_) | What::Disk, _) => Ok(Ok(())),
        (_, Some(codec)) => Ok(Err(format!(
            "is {} data whose content is neither an archive (tar, cpio, zip) nor a disk image",
            codec.name()
        ))),
        _ => Ok(Err(
            "is neither an archive (tar, cpio, zip) nor a disk image (told by its content, not its name)".into(),
        )),
    }
}
