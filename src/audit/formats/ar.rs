//! ar (.deb, .ipk, static libraries): `!<arch>\n`, then 60-byte headers,
//! each member's data padded to 2 bytes.
//!
//! GNU names end in `/`; the `/` (and `/SYM64/`) symbol table is not a
//! member; `//` holds the long names, referred to as `/123` (offset in the
//! table, each name ending in `/\n`). BSD names `#1/len` are the first
//! `len` bytes of the data, left out of the member's data and size.

use std::io::{self, Read};

use super::{bad, number, until_nul, Body, EntryKind, Header, Members};

pub(crate) const MAGIC: &[u8] = b"!<arch>\n";
/// The largest GNU long-name table held.
const MAX_TABLE: u64 = 1 << 20;
/// The longest BSD name held.
const MAX_NAME: u64 = 4096;

/// An ar read member by member.
#[derive(Debug)]
pub struct Ar<R> {
    body: Body<R>,
    started: bool,
    /// Padding after the current member's data.
    pad: u64,
    /// The GNU long-name table (`//`).
    names: Vec<u8>,
}

impl<R: Read> Ar<R> {
    pub fn new(inner: R) -> Self {
        Ar {
            body: Body::new(inner),
            started: false,
            pad: 0,
            names: Vec::new(),
        }
    }

    /// The name at `at` in the long-name table, up to its `/\n` (or `\n`,
    /// or NUL: other writers).
    fn long_name(&self, at: u64) -> io::Result<Vec<u8>> {
        let rest = usize::try_from(at)
            .ok()
            .and_then(|at| self.names.get(at..))
            .ok_or_else(|| bad("an ar member name points outside the long-name table"))?;
        let end = rest
            .iter()
            .position(|&b| b == b'\n' || b == 0)
            .unwrap_or(rest.len());
        let name = rest.get(..end).unwrap_or_default();
        Ok(name.strip_suffix(b"/").unwrap_or(name).to_vec())
    }
}

impl<R: Read> Members for Ar<R> {
    fn next_member(&mut self) -> io::Result<Option<Header>> {
        if !self.started {
            let mut magic = [0u8; 8];
            self.body.input.exact(&mut magic, "the ar magic")?;
            if magic != MAGIC {
                return Err(bad("not an ar archive (no `!<arch>` magic)"));
            }
            self.started = true;
        }
        self.body.finish()?;
        let pad = std::mem::take(&mut self.pad);
        self.body.input.skip(pad, "a member's padding")?;
        loop {
            let mut h = [0u8; 60];
            match self.body.input.fill(&mut h)? {
                0 => return Ok(None),
                60 => {}
                _ => return Err(super::cut("an ar header")),
            }
            if &h[58..60] != b"`\n" {
                return Err(bad("an ar header does not end in the ar header magic"));
            }
            let size = number(&h[48..58], 10)
                .ok_or_else(|| bad("an ar header has a size that is not a number"))?;
            let pad = size % 2;
            let raw = &h[..16];
            let trimmed = {
                let end = raw.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
                until_nul(raw.get(..end).unwrap_or_default())
            };
            if trimmed == b"/"
                || trimmed == b"/SYM64/"
                || trimmed == b"__.SYMDEF"
                || trimmed == b"__.SYMDEF SORTED"
            {
                self.body.input.skip(size + pad, "the ar symbol table")?;
                continue;
            }
            if trimmed == b"//" {
                if size > MAX_TABLE {
                    return Err(bad("an ar long-name table is larger than 1 MiB"));
                }
                self.names = self.body.input.take_vec(size, "the ar long-name table")?;
                self.body.input.skip(pad, "the ar long-name table")?;
                continue;
            }
            let (name, data_size) = if let Some(len) = trimmed.strip_prefix(b"#1/") {
                let len =
                    number(len, 10).ok_or_else(|| bad("an ar BSD name length is not a number"))?;
                if len > MAX_NAME {
                    return Err(bad("an ar member name is longer than 4 KiB"));
                }
                if len > size {
                    return Err(bad("an ar BSD name is longer than its member"));
                }
                let name = self.body.input.take_vec(len, "an ar member name")?;
                (until_nul(&name).to_vec(), size - len)
            } else if let Some(at) = trimmed.strip_prefix(b"/").filter(|d| !d.is_empty()) {
                let at =
                    number(at, 10).ok_or_else(|| bad("an ar long-name offset is not a number"))?;
                (self.long_name(at)?, size)
            } else {
                (trimmed.strip_suffix(b"/").unwrap_or(trimmed).to_vec(), size)
            };
            let mode = number(&h[40..48], 8).and_then(|m| u32::try_from(m & 0o7777).ok());
            self.body.start(Vec::new(), data_size);
            self.pad = pad;
            return Ok(Some(Header {
                name,
                kind: EntryKind::File,
                link: None,
                mode,
                size: data_size,
                xattrs: Vec::new(),
            }));
        }
    }

    fn data(&mut self) -> &mut dyn Read {
        &mut self.body
    }
}

#[cfg(test)]
mod tests {
    use super::super::tar::Tar;
    use super::super::testkit::{list, scratch, sh, variants};
    use super::*;

    fn read(data: &[u8]) -> Vec<(Header, Vec<u8>)> {
        let (members, err) = list(&mut Ar::new(data), 10_000);
        assert!(err.is_none(), "{err:?}");
        members
    }

    fn names(members: &[(Header, Vec<u8>)]) -> Vec<String> {
        members
            .iter()
            .map(|(h, _)| String::from_utf8_lossy(&h.name).into_owned())
            .collect()
    }

    #[test]
    fn gnu_ar_with_long_names_and_a_symbol_table_is_read() {
        let dir = scratch("ar-gnu");
        let long = "a_member_name_longer_than_sixteen_bytes.txt";
        sh(
            &dir,
            &format!(
                "printf 'odd' > short && printf 'hello secret' > {long} && printf 'x' > {long}2 \
                 && printf 'int f(void){{return 1;}}' > f.c && cc -c f.c -o f.o \
                 && ar rcs lib.a short {long} f.o {long}2"
            ),
        );
        let data = std::fs::read(dir.join("lib.a")).unwrap();
        assert!(
            data[8..].starts_with(b"/ "),
            "a symbol table first (cc made f.o)"
        );
        assert!(data.windows(3).any(|w| w == b"// "), "a long-name table");
        let members = read(&data);
        assert_eq!(names(&members), ["short", long, "f.o", &format!("{long}2")]);
        assert_eq!(members[0].1, b"odd");
        assert_eq!(members[1].1, b"hello secret");
        assert_eq!(members[3].1, b"x");
        assert_eq!(members[0].0.mode.map(|m| m & 0o777), Some(0o644));
    }

    #[test]
    fn a_deb_made_by_dpkg_deb_is_read_down_to_its_data_tar() {
        let dir = scratch("ar-deb");
        sh(
            &dir,
            "mkdir -p p/DEBIAN p/opt/app && printf 'Package: t\\nVersion: 1\\nArchitecture: all\\nMaintainer: m <m@x>\\nDescription: d\\n' > p/DEBIAN/control \
             && printf 'hello secret' > p/opt/app/treehub.json \
             && dpkg-deb -Znone --root-owner-group --build p t.deb >/dev/null",
        );
        let members = read(&std::fs::read(dir.join("t.deb")).unwrap());
        assert_eq!(
            names(&members),
            ["debian-binary", "control.tar", "data.tar"]
        );
        assert_eq!(members[0].1, b"2.0\n");
        let (files, err) = list(&mut Tar::new(&members[2].1[..]), 100);
        assert!(err.is_none());
        let f = files
            .iter()
            .find(|(h, _)| super::super::normalise(&h.name) == "opt/app/treehub.json")
            .unwrap();
        assert_eq!(f.1, b"hello secret");
    }

    #[test]
    fn bsd_names_are_taken_out_of_the_data() {
        let mut data = MAGIC.to_vec();
        let name = b"a_long_bsd_name.txt\0";
        let body = b"data!";
        let size = name.len() + body.len();
        data.extend(
            format!(
                "#1/{:<13}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
                name.len(),
                0,
                0,
                0,
                644,
                size
            )
            .as_bytes(),
        );
        data.extend(name);
        data.extend(body);
        data.push(b'\n'); // size 25 is odd
        data.extend(
            format!(
                "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
                "next/", 0, 0, 0, 644, 2
            )
            .as_bytes(),
        );
        data.extend(b"ok");
        let members = read(&data);
        assert_eq!(names(&members), ["a_long_bsd_name.txt", "next"]);
        assert_eq!((members[0].0.size, members[0].1.as_slice()), (5, &body[..]));
        assert_eq!(members[1].1, b"ok");
    }

    #[test]
    fn hostile_headers_are_errors() {
        let header = |name: &str, size: &str| {
            let mut d = MAGIC.to_vec();
            d.extend(
                format!("{name:<16}{:<12}{:<6}{:<6}{:<8}{size:<10}`\n", 0, 0, 0, 644).as_bytes(),
            );
            d
        };
        for (name, size, why) in [
            ("//", "9999999999", "larger than 1 MiB"),
            ("#1/99999", "99999999", "longer than 4 KiB"),
            ("#1/20", "10", "longer than its member"),
            ("/55", "1", "outside the long-name table"),
            ("a", "12x", "not a number"),
        ] {
            let (_, err) = list(&mut Ar::new(&header(name, size)[..]), 10);
            assert!(err.unwrap().to_string().contains(why), "{name}");
        }
        let (m, err) = list(&mut Ar::new(&header("big", "9999999999")[..]), 10);
        assert!(m.is_empty() && err.unwrap().kind() == io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn hostile_variants_end_in_ok_or_err() {
        let dir = scratch("ar-hostile");
        let long = "a_member_name_longer_than_sixteen_bytes.txt";
        sh(
            &dir,
            &format!("printf 'odd' > s && printf 'x' > {long} && ar rc l.a s {long}"),
        );
        let good = std::fs::read(dir.join("l.a")).unwrap();
        for v in variants(&good, 41, 300) {
            list(&mut Ar::new(&v[..]), 10_000);
        }
    }
}
