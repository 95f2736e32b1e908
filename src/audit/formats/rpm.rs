//! rpm: the 96-byte lead, the signature header (padded to 8 bytes), the
//! main header, then the payload: a compressed cpio (newc), compressed with
//! what the main header's tag 1125 (PAYLOADCOMPRESSOR) says, gzip when it
//! is absent (rpm's own default before 4.14). The limits on a header's
//! index and data are unblob's (`handlers/archive/rpm.py`): 0xFFFF entries,
//! 0x0FFFFFFF bytes; the data is read through, never held.

use std::io::{self, Read};

use super::{bad, cut};

const LEAD: &[u8] = b"\xed\xab\xee\xdb";
const HEADER: &[u8] = b"\x8e\xad\xe8";
const MAX_ENTRIES: u64 = 0xffff;
const MAX_DATA: u64 = 0x0fff_ffff;
const PAYLOADCOMPRESSOR: u32 = 1125;
const STRING: u32 = 6;
/// The compressors rpm writes (`rpmio/rpmfileutil.c`), and what this
/// module returns for each.
const COMPRESSORS: [&str; 7] = ["gzip", "bzip2", "xz", "lzma", "zstd", "lz4", "identity"];

/// Reads an rpm up to its payload: the payload's compressor ("gzip",
/// "bzip2", "xz", "lzma", "zstd", "lz4" or "identity") and the reader,
/// positioned at the payload's first byte.
///
/// "gzip" is also what an absent tag means, and rpm reads that payload
/// with zlib's `gzdopen`, which hands data without the gzip magic through
/// as is: rpmbuild 4.18 writes an uncompressed payload (`w0.ufdio`) with
/// no tag. The caller should do the same (a payload starting `07070` is
/// the cpio itself).
pub fn payload<R: Read>(mut r: R) -> io::Result<(String, R)> {
    let mut lead = [0u8; 96];
    exact(&mut r, &mut lead, "the rpm lead")?;
    if !lead.starts_with(LEAD) {
        return Err(bad("not an rpm package (no rpm lead magic)"));
    }
    let (entries, data) = header_sizes(&mut r, "the rpm signature header")?;
    let signature = entries * 16 + data;
    skip(
        &mut r,
        signature + (8 - signature % 8) % 8,
        "the rpm signature header",
    )?;
    let (entries, data) = header_sizes(&mut r, "the rpm header")?;
    let mut index = Vec::new();
    r.by_ref().take(entries * 16).read_to_end(&mut index)?;
    if index.len() as u64 != entries * 16 {
        return Err(cut("the rpm header"));
    }
    let found = index.chunks_exact(16).find_map(|e| {
        let word = |i: usize| {
            e.get(i..i + 4)
                .and_then(|w| <[u8; 4]>::try_from(w).ok())
                .map_or(0, u32::from_be_bytes)
        };
        (word(0) == PAYLOADCOMPRESSOR).then(|| (word(4), u64::from(word(8))))
    });
    let compressor = match found {
        None => {
            skip(&mut r, data, "the rpm header")?;
            "gzip".to_owned()
        }
        Some((kind, offset)) => {
            if kind != STRING || offset >= data {
                return Err(bad("the rpm payload compressor tag is malformed"));
            }
            skip(&mut r, offset, "the rpm header")?;
            let mut value = Vec::new();
            let room = (data - offset).min(16);
            r.by_ref().take(room).read_to_end(&mut value)?;
            if value.len() as u64 != room {
                return Err(cut("the rpm header"));
            }
            skip(&mut r, data - offset - room, "the rpm header")?;
            let value = super::until_nul(&value);
            COMPRESSORS
                .iter()
                .find(|c| c.as_bytes() == value)
                .ok_or_else(|| bad("the rpm payload compressor is not one this reader knows"))?
                .to_string()
        }
    };
    Ok((compressor, r))
}

/// A header's magic, then its index entry count and data size, bounded.
fn header_sizes<R: Read>(r: &mut R, what: &str) -> io::Result<(u64, u64)> {
    let mut h = [0u8; 16];
    exact(r, &mut h, what)?;
    if !h.starts_with(HEADER) {
        return Err(bad(format!("{what} has no header magic")));
    }
    let entries = u64::from(u32::from_be_bytes([h[8], h[9], h[10], h[11]]));
    let data = u64::from(u32::from_be_bytes([h[12], h[13], h[14], h[15]]));
    if entries > MAX_ENTRIES || data > MAX_DATA {
        return Err(bad(format!("{what} is larger than an rpm header may be")));
    }
    Ok((entries, data))
}

fn exact<R: Read>(r: &mut R, buf: &mut [u8], what: &str) -> io::Result<()> {
    r.read_exact(buf).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            cut(what)
        } else {
            e
        }
    })
}

fn skip<R: Read>(r: &mut R, n: u64, what: &str) -> io::Result<()> {
    if io::copy(&mut r.by_ref().take(n), &mut io::sink())? == n {
        Ok(())
    } else {
        Err(cut(what))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{list, scratch, sh, variants};
    use super::super::{normalise, Cpio};
    use super::*;

    /// A tiny noarch rpm built by rpmbuild with this payload setting.
    fn rpm(payload: &str, tag: &str) -> Vec<u8> {
        let dir = scratch(&format!("rpm-{tag}"));
        std::fs::write(
            dir.join("t.spec"),
            "Name: t\nVersion: 1\nRelease: 1\nSummary: t\nLicense: MIT\nBuildArch: noarch\n\
             %description\nt\n\
             %install\nmkdir -p %{buildroot}/opt/app\nprintf 'hello secret' > %{buildroot}/opt/app/treehub.json\n\
             %files\n/opt/app/treehub.json\n",
        )
        .unwrap();
        sh(
            &dir,
            &format!(
                "rpmbuild --quiet -bb --define \"_topdir $PWD/top\" --define '_binary_payload {payload}' \
                 --define '_build_id_links none' t.spec >/dev/null 2>&1 && cp top/RPMS/noarch/t-1-1.noarch.rpm t.rpm"
            ),
        );
        std::fs::read(dir.join("t.rpm")).unwrap()
    }

    fn files(cpio: &[u8]) -> Vec<(String, Vec<u8>)> {
        let (members, err) = list(&mut Cpio::new(cpio), 100);
        assert!(err.is_none(), "{err:?}");
        members
            .into_iter()
            .map(|(h, d)| (normalise(&h.name), d))
            .collect()
    }

    #[test]
    fn rpms_made_by_rpmbuild_lead_to_their_payload() {
        let data = rpm("w9.gzdio", "gz");
        let (compressor, mut rest) = payload(&data[..]).unwrap();
        assert_eq!(compressor, "gzip");
        let mut cpio = Vec::new();
        flate2::read::GzDecoder::new(&mut rest)
            .read_to_end(&mut cpio)
            .unwrap();
        assert_eq!(
            files(&cpio),
            [("opt/app/treehub.json".to_owned(), b"hello secret".to_vec())]
        );

        // No compressor tag: "gzip", and the payload is the cpio as is.
        let data = rpm("w0.ufdio", "none");
        let (compressor, rest) = payload(&data[..]).unwrap();
        assert_eq!(compressor, "gzip");
        assert!(rest.starts_with(b"070701"));
        assert_eq!(
            files(rest),
            [("opt/app/treehub.json".to_owned(), b"hello secret".to_vec())]
        );

        for (setting, want) in [
            ("w2.xzdio", "xz"),
            ("w3.zstdio", "zstd"),
            ("w9.bzdio", "bzip2"),
        ] {
            let data = rpm(setting, want);
            let (compressor, rest) = payload(&data[..]).unwrap();
            assert_eq!(compressor, want);
            assert!(!rest.is_empty());
        }
    }

    #[test]
    fn a_missing_compressor_tag_means_gzip_and_bounds_hold() {
        let mut lead = LEAD.to_vec();
        lead.resize(96, 0);
        let header = |entries: u32, data: u32| {
            let mut h = b"\x8e\xad\xe8\x01\0\0\0\0".to_vec();
            h.extend(entries.to_be_bytes());
            h.extend(data.to_be_bytes());
            h
        };
        let mut data = lead.clone();
        data.extend(header(1, 3)); // one entry, 3 bytes: padded to 8
        data.extend([0u8; 16]);
        data.extend(b"abc\0\0\0\0\0");
        data.extend(header(0, 0));
        data.extend(b"PAYLOAD");
        let (compressor, rest) = payload(&data[..]).unwrap();
        assert_eq!((compressor.as_str(), rest), ("gzip", &b"PAYLOAD"[..]));

        let mut huge = lead.clone();
        huge.extend(header(0x10000, 0));
        assert!(payload(&huge[..])
            .unwrap_err()
            .to_string()
            .contains("larger than an rpm header"));
        let mut huge = lead;
        huge.extend(header(0, 0x1000_0000));
        assert!(payload(&huge[..]).is_err());
    }

    #[test]
    fn hostile_variants_end_in_ok_or_err() {
        let good = rpm("w0.ufdio", "hostile");
        for v in variants(&good, 53, 400) {
            if let Ok((_, rest)) = payload(&v[..]) {
                list(&mut Cpio::new(rest), 10_000);
            }
        }
    }
}
