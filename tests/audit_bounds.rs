//! `audit` keeps its bounds on hostile inputs (issue 17, item 6): a
//! single-block `.tar.xz` of a huge, highly compressible stream is decoded
//! in bounded memory (peak RSS measured with `/usr/bin/time`), a zip whose
//! 2,000 entries share one deflate bomb ends within its work bounds, and
//! containers nested 10 deep end with a `not-searched` warning.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::fs;
use std::time::Duration;

use common::{crc32_of_zeros, deflate_zeros, sh, tool, Audit, Setup};

const MIB: u64 = 1024 * 1024;

#[test]
fn a_single_block_tar_xz_of_a_gibibyte_of_zeros_is_audited_in_256_mib() {
    let s = Setup::new();
    // 1 GiB of zeros (a sparse file: nothing on disk) then the secret,
    // one xz block (-T1): about 150 KB.
    let script = "
        mkdir -p r/etc
        truncate -s 1G r/zeros.bin
        printf 'secret = TEST-ONLY-client-secret-0123\\n' > r/etc/app.conf
        tar -C r -cf - zeros.bin etc | xz -9 -T1 > image.tar.xz
    ";
    sh(s.dir.path(), script);
    let xz = s.dir.join("image.tar.xz");
    let size = fs::metadata(&xz).unwrap().len();
    assert!(size < 400 * 1024, "{size} bytes");
    let run = tool("/usr/bin/time")
        .args(["-f", "%M"])
        .arg(env!("CARGO_BIN_EXE_sota-stage"))
        .args(["audit", "--format", "json", "--credentials"])
        .arg(&s.zip)
        .arg(&xz)
        // A debug build decodes and searches 1 GiB here.
        .timeout(Duration::from_secs(600))
        .run();
    let kib: u64 = run
        .stderr
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| run.fail("no peak RSS from /usr/bin/time"));
    let audit = Audit::of(run);
    // The secret after the gibibyte is found: the stream was read through.
    audit.leak_at("etc/app.conf", "");
    assert!(
        kib * 1024 <= 256 * MIB,
        "peak RSS {} MiB\n{}",
        kib / 1024,
        audit.run
    );
}

/// A zip of `count` central entries that all point to one local header
/// whose data inflates to `len` zero bytes (written by hand: no tool
/// writes one; APPNOTE 4.3.7, 4.3.12, 4.3.16).
fn shared_stream_zip(count: u16, len: u32) -> Vec<u8> {
    let data = deflate_zeros(len);
    let crc = crc32_of_zeros(u64::from(len));
    let csize = u32::try_from(data.len()).unwrap();
    let p16 = |o: &mut Vec<u8>, v: u16| o.extend_from_slice(&v.to_le_bytes());
    let p32 = |o: &mut Vec<u8>, v: u32| o.extend_from_slice(&v.to_le_bytes());
    let mut out = Vec::new();
    let name = b"f0000.bin";
    p32(&mut out, 0x0403_4b50);
    for v in [20, 0, 8, 0, 0x21] {
        p16(&mut out, v); // version, flags, method, time, date
    }
    p32(&mut out, crc);
    p32(&mut out, csize);
    p32(&mut out, len);
    p16(&mut out, name.len() as u16);
    p16(&mut out, 0);
    out.extend_from_slice(name);
    out.extend_from_slice(&data);
    let central = out.len();
    for i in 0..count {
        let name = format!("f{i:04}.bin");
        p32(&mut out, 0x0201_4b50);
        for v in [0x0314, 20, 0, 8, 0, 0x21] {
            p16(&mut out, v); // made by, needed, flags, method, time, date
        }
        p32(&mut out, crc);
        p32(&mut out, csize);
        p32(&mut out, len);
        p16(&mut out, name.len() as u16);
        for v in [0, 0, 0, 0] {
            p16(&mut out, v); // extra, comment, disk, internal attributes
        }
        p32(&mut out, 0o100_644 << 16);
        p32(&mut out, 0); // every entry: the one local header
        out.extend_from_slice(name.as_bytes());
    }
    let central_size = u32::try_from(out.len() - central).unwrap();
    p32(&mut out, 0x0605_4b50);
    for v in [0, 0, count, count] {
        p16(&mut out, v);
    }
    p32(&mut out, central_size);
    p32(&mut out, u32::try_from(central).unwrap());
    p16(&mut out, 0);
    out
}

#[test]
fn a_zip_of_2000_entries_sharing_one_64_mib_deflate_stream_ends_within_its_work_bounds() {
    let s = Setup::new();
    let zip = shared_stream_zip(2000, 64 * 1024 * 1024);
    assert!(zip.len() < 1024 * 1024, "{} bytes", zip.len());
    let path = s.dir.write("rootfs/usr/share/shared.zip", &zip);
    let listed = tool("unzip").arg("-l").arg(&path).run();
    listed.stdout_has("f1999.bin");
    // The bound is counted in work (bytes inflated per file), not time:
    // 30 s is only a hang guard, generous for a debug build on a busy
    // machine; a run that inflates every entry takes minutes.
    let run = s
        .cmd(&s.dir.join("rootfs"), true)
        .timeout(Duration::from_secs(30))
        .run();
    let audit = Audit::of(run);
    audit.run.code(0);
    for f in &audit.findings {
        if f.kind != "not-searched" || f.severity != "warning" {
            audit.fail("only not-searched warnings");
        }
    }
}

#[test]
fn containers_nested_ten_deep_end_with_a_not_searched_warning() {
    let s = Setup::new();
    let files = s.unpack("creds");
    // Innermost first: treehub.json in a zip, in a gzip, in a tar, in an
    // xz, in a cpio, in a bzip2, in a tar, in a zstd, in a zip, in a gzip.
    let script = "
        zip -q -X l1.zip treehub.json
        gzip -c l1.zip > l2.gz
        tar -cf l3.tar l2.gz
        xz -T1 -c l3.tar > l4.xz
        echo l4.xz | cpio -o -H newc --quiet > l5.cpio
        bzip2 -c l5.cpio > l6.bz2
        tar -cf l7.tar l6.bz2
        zstd -q -c l7.tar > l8.zst
        zip -q -X l9.zip l8.zst
        gzip -c l9.zip > deep.gz
    ";
    sh(&files, script);
    let deep = fs::read(files.join("deep.gz")).unwrap();
    s.dir.write("rootfs/usr/share/deep.gz", deep);
    let audit = s.audit(&s.dir.join("rootfs"));
    audit.warning_at("usr/share/deep.gz", "not-searched");
    // Assumes the nesting cap stays under 10 (3 today, unblob's 10).
    audit.run.code(0);
}
