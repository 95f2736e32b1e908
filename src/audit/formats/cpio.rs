//! cpio: newc (`070701`), crc (`070702`), odc (`070707`) and binary
//! (`c7 71`, either byte order), as GNU cpio and the kernel's initramfs
//! unpacker read them.
//!
//! `TRAILER!!!` ends one archive, but a Linux boot image often holds
//! several back to back (the early microcode cpio, then the initramfs, each
//! padded with zeros): after a trailer, zeros are read through and reading
//! goes on if another cpio header follows.

use std::io::{self, Read};

use super::{bad, number, until_nul, Body, EntryKind, Header, Members};

/// The longest name held (PATH_MAX).
const MAX_NAME: u64 = 4096;
/// The longest symlink target held to put in `Header::link` (the data is
/// handed out whatever its size).
const MAX_LINK: u64 = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// newc and crc: hex fields, name and data padded to 4 bytes.
    Newc,
    /// odc: octal fields, no padding.
    Odc,
    /// Binary, 16-bit words in this byte order; padding to 2 bytes.
    Binary { little: bool },
}

/// Whether these bytes start a cpio header.
pub(crate) fn is_magic(head: &[u8]) -> bool {
    kind_of(head).is_some()
}

fn kind_of(head: &[u8]) -> Option<Kind> {
    match head.get(..6) {
        Some(b"070701") | Some(b"070702") => return Some(Kind::Newc),
        Some(b"070707") => return Some(Kind::Odc),
        _ => {}
    }
    match head.get(..2) {
        Some(b"\xc7\x71") => Some(Kind::Binary { little: true }),
        Some(b"\x71\xc7") => Some(Kind::Binary { little: false }),
        _ => None,
    }
}

/// A cpio read member by member.
#[derive(Debug)]
pub struct Cpio<R> {
    body: Body<R>,
    /// Padding after the current member's data.
    pad: u64,
}

impl<R: Read> Cpio<R> {
    pub fn new(inner: R) -> Self {
        Cpio {
            body: Body::new(inner),
            pad: 0,
        }
    }

    /// After a trailer: reads through zeros; whether another cpio header
    /// follows (its first bytes are put back).
    fn another(&mut self) -> io::Result<bool> {
        let mut buf = [0u8; 4096];
        loop {
            let got = self.body.input.fill(&mut buf)?;
            let Some(chunk) = buf.get(..got) else {
                return Ok(false);
            };
            if let Some(at) = chunk.iter().position(|&b| b != 0) {
                let rest = chunk.get(at..).unwrap_or_default().to_vec();
                self.body.input.unread(&rest);
                let mut head = [0u8; 6];
                let n = self.body.input.fill(&mut head)?;
                let head = head.get(..n).unwrap_or_default();
                self.body.input.unread(head);
                return Ok(is_magic(head));
            }
            if got < buf.len() {
                return Ok(false);
            }
        }
    }
}

impl<R: Read> Members for Cpio<R> {
    fn next_member(&mut self) -> io::Result<Option<Header>> {
        self.body.finish()?;
        let pad = std::mem::take(&mut self.pad);
        self.body.input.skip(pad, "a member's padding")?;
        loop {
            let mut magic = [0u8; 6];
            let got = self.body.input.fill(&mut magic[..2])?;
            if got == 0 {
                return Ok(None);
            }
            if got < 2 {
                return Err(super::cut("a cpio header"));
            }
            let kind = match kind_of(&magic[..got]) {
                Some(k @ Kind::Binary { .. }) => k,
                _ => {
                    self.body.input.exact(&mut magic[2..], "a cpio header")?;
                    kind_of(&magic).ok_or_else(|| bad("a cpio header has no cpio magic"))?
                }
            };
            let (mode, name_size, size, header_len) = match kind {
                Kind::Newc => {
                    let mut h = [0u8; 104];
                    self.body.input.exact(&mut h, "a cpio header")?;
                    let field = |i: usize| {
                        h.get(i * 8..i * 8 + 8)
                            .and_then(|f| number_strict(f, 16))
                            .ok_or_else(|| bad("a cpio header has a field that is not a number"))
                    };
                    (field(1)?, field(11)?, field(6)?, 110)
                }
                Kind::Odc => {
                    let mut h = [0u8; 70];
                    self.body.input.exact(&mut h, "a cpio header")?;
                    let field = |from: usize, len: usize| {
                        h.get(from - 6..from - 6 + len)
                            .and_then(|f| number_strict(f, 8))
                            .ok_or_else(|| bad("a cpio header has a field that is not a number"))
                    };
                    (field(18, 6)?, field(59, 6)?, field(65, 11)?, 76)
                }
                Kind::Binary { little } => {
                    let mut h = [0u8; 24];
                    self.body.input.exact(&mut h, "a cpio header")?;
                    let word = |i: usize| {
                        let b = [h[i * 2], h[i * 2 + 1]];
                        u64::from(if little {
                            u16::from_le_bytes(b)
                        } else {
                            u16::from_be_bytes(b)
                        })
                    };
                    // Words after the magic: dev ino mode uid gid nlink
                    // rdev mtime(2) namesize filesize(2), 32-bit values
                    // most significant word first.
                    (word(2), word(9), word(10) << 16 | word(11), 26)
                }
            };
            if name_size > MAX_NAME {
                return Err(bad("a cpio member name is longer than 4 KiB"));
            }
            let name = self.body.input.take_vec(name_size, "a cpio member name")?;
            let align = match kind {
                Kind::Newc => 4,
                Kind::Odc => 1,
                Kind::Binary { .. } => 2,
            };
            self.body
                .input
                .skip(padding(header_len + name_size, align), "a cpio header")?;
            let name = until_nul(&name).to_vec();
            if name == b"TRAILER!!!" {
                if self.another()? {
                    continue;
                }
                return Ok(None);
            }
            let kind = match mode & 0o170_000 {
                0o100_000 => EntryKind::File,
                0o040_000 => EntryKind::Dir,
                0o120_000 => EntryKind::Symlink,
                _ => EntryKind::Other,
            };
            let mut held = Vec::new();
            let mut link = None;
            if kind == EntryKind::Symlink && size <= MAX_LINK {
                held = self.body.input.take_vec(size, "a cpio symlink target")?;
                link = Some(until_nul(&held).to_vec());
            }
            let left = size - held.len() as u64;
            self.body.start(held, left);
            self.pad = padding(size, align);
            return Ok(Some(Header {
                name,
                kind,
                link,
                mode: u32::try_from(mode & 0o7777).ok(),
                size,
                xattrs: Vec::new(),
            }));
        }
    }

    fn data(&mut self) -> &mut dyn Read {
        &mut self.body
    }
}

/// A fixed-width cpio field: every byte a digit.
fn number_strict(field: &[u8], radix: u32) -> Option<u64> {
    if field.iter().all(|&b| char::from(b).is_digit(radix)) {
        number(field, radix)
    } else {
        None
    }
}

fn padding(len: u64, align: u64) -> u64 {
    (align - len % align) % align
}

#[cfg(test)]
mod tests {
    use super::super::normalise;
    use super::super::testkit::{list, scratch, sh, variants};
    use super::*;

    fn read(data: &[u8]) -> Vec<(Header, Vec<u8>)> {
        let (members, err) = list(&mut Cpio::new(data), 10_000);
        assert!(err.is_none(), "{err:?}");
        members
    }

    fn tree(name: &str) -> super::super::testkit::Scratch {
        let dir = scratch(name);
        sh(
            &dir,
            "mkdir -p d/sub && printf 'hello secret' > d/sub/f.txt && printf 'odd' > d/three \
             && : > d/empty && ln -s sub/f.txt d/link && mkfifo d/fifo",
        );
        dir
    }

    #[test]
    fn archives_made_by_gnu_cpio_in_every_format_are_read() {
        let dir = tree("cpio-1");
        for format in ["newc", "crc", "odc", "bin"] {
            sh(
                &dir,
                &format!("find d | LC_ALL=C sort | cpio --quiet -o -H {format} > {format}.cpio"),
            );
            let members = read(&std::fs::read(dir.join(format!("{format}.cpio"))).unwrap());
            let got: Vec<_> = members
                .iter()
                .map(|(h, d)| {
                    (
                        normalise(&h.name),
                        h.kind.clone(),
                        h.size,
                        d.clone(),
                        h.link.clone(),
                    )
                })
                .collect();
            let want = vec![
                ("d".into(), EntryKind::Dir, 0, vec![], None),
                ("d/empty".into(), EntryKind::File, 0, vec![], None),
                ("d/fifo".into(), EntryKind::Other, 0, vec![], None),
                (
                    "d/link".into(),
                    EntryKind::Symlink,
                    9,
                    b"sub/f.txt".to_vec(),
                    Some(b"sub/f.txt".to_vec()),
                ),
                ("d/sub".into(), EntryKind::Dir, 0, vec![], None),
                (
                    "d/sub/f.txt".into(),
                    EntryKind::File,
                    12,
                    b"hello secret".to_vec(),
                    None,
                ),
                ("d/three".into(), EntryKind::File, 3, b"odd".to_vec(), None),
            ];
            assert_eq!(got, want, "{format}");
            assert_eq!(
                members[5].0.mode.map(|m| m & 0o777),
                Some(0o644),
                "{format}"
            );
        }
    }

    #[test]
    fn archives_back_to_back_are_all_read() {
        let dir = tree("cpio-2");
        // Early microcode (newc) then the initramfs (odc here, to change
        // format on the way), each padded to 512 by cpio; then zeros.
        sh(
            &dir,
            "printf 'ucode' > micro && echo micro | cpio --quiet -o -H newc > a.cpio \
             && find d/sub | LC_ALL=C sort | cpio --quiet -o -H odc > b.cpio \
             && cat a.cpio b.cpio > both.cpio && head -c 4096 /dev/zero >> both.cpio",
        );
        let members = read(&std::fs::read(dir.join("both.cpio")).unwrap());
        let names: Vec<_> = members.iter().map(|(h, _)| normalise(&h.name)).collect();
        assert_eq!(names, ["micro", "d/sub", "d/sub/f.txt"]);
        assert_eq!(members[2].1, b"hello secret");
        // Garbage after the trailer and its zeros ends the reading.
        let mut data = std::fs::read(dir.join("a.cpio")).unwrap();
        data.extend(b"garbage");
        assert_eq!(read(&data).len(), 1);
    }

    /// A binary cpio member, 16-bit words in either byte order.
    fn binary(little: bool, name: &str, mode: u16, data: &[u8]) -> Vec<u8> {
        let size = data.len() as u32;
        let name_size = name.len() as u16 + 1;
        let words = [
            0x71c7,
            0,
            1,
            mode,
            0,
            0,
            1,
            0,
            0,
            0,
            name_size,
            (size >> 16) as u16,
            size as u16,
        ];
        let mut out = Vec::new();
        for w in words {
            out.extend(if little {
                w.to_le_bytes()
            } else {
                w.to_be_bytes()
            });
        }
        out.extend(name.as_bytes());
        out.push(0);
        out.resize(out.len() + out.len() % 2, 0);
        out.extend(data);
        out.resize(out.len() + data.len() % 2, 0);
        out
    }

    #[test]
    fn binary_cpio_is_read_in_both_byte_orders() {
        for little in [true, false] {
            let mut data = binary(little, "odd", 0o100644, b"abc");
            data.extend(binary(little, "l", 0o120777, b"odd"));
            data.extend(binary(little, "TRAILER!!!", 0, b""));
            let members = read(&data);
            let got: Vec<_> = members
                .iter()
                .map(|(h, d)| (h.name.clone(), h.kind.clone(), d.clone()))
                .collect();
            assert_eq!(
                got,
                [
                    (b"odd".to_vec(), EntryKind::File, b"abc".to_vec()),
                    (b"l".to_vec(), EntryKind::Symlink, b"odd".to_vec())
                ],
                "little endian: {little}"
            );
        }
    }

    #[test]
    fn long_names_and_truncation_are_errors() {
        let head = format!("070701{}", "00000000".repeat(13)).into_bytes();
        let mut long = head.clone();
        long[94..102].copy_from_slice(b"00100000");
        let (_, err) = list(&mut Cpio::new(&long[..]), 10);
        assert!(err.unwrap().to_string().contains("longer than 4 KiB"));
        let mut huge = head;
        huge[14..22].copy_from_slice(b"000081a4");
        huge[54..62].copy_from_slice(b"ffffffff");
        huge[94..102].copy_from_slice(b"00000002");
        huge.extend(b"a\0abc");
        let (members, err) = list(&mut Cpio::new(&huge[..]), 10);
        assert!(members.is_empty());
        assert_eq!(err.unwrap().kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn hostile_variants_end_in_ok_or_err() {
        let dir = tree("cpio-3");
        for format in ["newc", "odc", "bin"] {
            sh(
                &dir,
                &format!("find d | LC_ALL=C sort | cpio --quiet -o -H {format} > h.cpio"),
            );
            let good = std::fs::read(dir.join("h.cpio")).unwrap();
            for v in variants(&good, 29, 300) {
                list(&mut Cpio::new(&v[..]), 10_000);
            }
        }
    }
}
