//! `audit` looks into every container a reader can undo (issue 17, items
//! 1, 2 and 4): loose git objects (zlib), a zip found by its end record
//! after a script, standalone bzip2/xz/lzma/lz4/zstd files (multi-stream,
//! multi-frame, legacy lz4), cpio (initramfs), .deb/.ipk (ar) and .rpm
//! payloads, and the tars and zips GNU tar and unzip extract though they
//! bend the format. Each fixture is made by the real Debian tool (or by
//! hand where no tool writes it, checked with the tool that reads it), put
//! into a root file system folder, and audited with a clean counterpart.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::audit::{pax_header, tar_member, TAR_END};
use common::{sh, tool, Audit, RawZip, Setup, TestDir, ZipEntry, OAUTH2_SECRET};

/// Clean stand-ins with the same names: what a container holds when no
/// secret reached it.
const CLEAN_TREEHUB: &str = r#"{"ostree": {"server": "https://treehub.example.test/api/v3"}}"#;
const CLEAN_TARGETS_SEC: &str = r#"{"keytype": "ED25519", "keyval": {"public": "none"}}"#;

/// Two work folders below the test folder, `leak` and `clean`, each with
/// `treehub.json`, `targets.sec` and `app.conf` (the client secret in a
/// config line): the real ones, and clean stand-ins. Returns both.
fn work(s: &Setup) -> [PathBuf; 2] {
    let leak = s.dir.mkdir("leak");
    fs::write(leak.join("treehub.json"), &s.treehub).unwrap();
    fs::write(leak.join("targets.sec"), &s.targets_sec).unwrap();
    fs::write(
        leak.join("app.conf"),
        format!("[auth]\nsecret = {OAUTH2_SECRET}\n"),
    )
    .unwrap();
    let clean = s.dir.mkdir("clean");
    fs::write(clean.join("treehub.json"), CLEAN_TREEHUB).unwrap();
    fs::write(clean.join("targets.sec"), CLEAN_TARGETS_SEC).unwrap();
    fs::write(clean.join("app.conf"), "[auth]\nsecret = none\n").unwrap();
    [leak, clean]
}

/// A root file system folder `rootfs-NAME` holding `bytes` at `rel`.
fn rootfs(s: &Setup, name: &str, rel: &str, bytes: &[u8]) -> PathBuf {
    let root = s.dir.mkdir(format!("rootfs-{name}"));
    s.dir
        .write(Path::new(&format!("rootfs-{name}")).join(rel), bytes);
    root
}

/// Runs `script` in both work folders (it writes `out`), puts each `out`
/// at `rel` in a root file system, and audits both: the leak is found at
/// `rel` with a member chain ending in `member_end`, the clean one passes.
/// Returns the leak's audit.
#[track_caller]
fn leak_and_clean(s: &Setup, script: &str, out: &str, rel: &str, member_end: &str) -> Audit {
    let [leak, clean] = work(s);
    sh(&leak, script);
    sh(&clean, script);
    if member_end.is_empty() {
        // A compressed stream: only its content holds the secret.
        assert_hidden(s, &fs::read(leak.join(out)).unwrap());
    }
    let leaky = rootfs(s, "leak", rel, &fs::read(leak.join(out)).unwrap());
    let fine = rootfs(s, "clean", rel, &fs::read(clean.join(out)).unwrap());
    s.audit(&fine).clean();
    let audit = s.audit(&leaky);
    audit.leak_at(rel, member_end);
    s.assert_silent(&audit.run);
    audit
}

/// [`leak_and_clean`] of a compressed stream, named as `rel` ends, at
/// `rel` in the root file system.
fn compressed(s: &Setup, script: &str, rel: &str) {
    let out = rel.rsplit('/').next().unwrap_or(rel);
    leak_and_clean(s, script, out, rel, "");
}

/// [`leak_and_clean`] of an archive whose member `treehub.json` leaks.
fn treehub_member(s: &Setup, script: &str, out: &str, rel: &str) -> Audit {
    leak_and_clean(s, script, out, rel, "treehub.json")
}

/// A finding of `audit` names a member path holding `part`.
#[track_caller]
fn assert_found_in_member(audit: &Audit, part: &str) {
    assert!(
        audit.findings.iter().any(|f| f.member.contains(part)),
        "{}",
        audit.run
    );
}

/// The tar `out` the script makes, found at its member `treehub.json` in a
/// root file system at `usr/share/OUT`, and as the root file system itself.
fn tar_inside_and_as_root(s: &Setup, script: &str, out: &str) {
    treehub_member(s, script, out, &format!("usr/share/{out}"));
    audit_root_tar(
        s,
        &fs::read(s.dir.join("leak").join(out)).unwrap(),
        &fs::read(s.dir.join("clean").join(out)).unwrap(),
        "treehub.json",
    );
}

/// No secret in these raw bytes: the fixture hides it in compressed data,
/// where only a decoder finds it.
#[track_caller]
fn assert_hidden(s: &Setup, raw: &[u8]) {
    for secret in [OAUTH2_SECRET, &s.private_text[..32]] {
        let found = raw.windows(secret.len()).any(|w| w == secret.as_bytes());
        assert!(!found, "the fixture shows a secret in its raw bytes");
    }
}

/// A tar given as PATH (the image's root file system as a tar): the leak
/// is found at `path`, the clean one passes.
#[track_caller]
fn audit_root_tar(s: &Setup, leak: &[u8], clean: &[u8], path: &str) {
    let fine = s.dir.write("clean-root.tar", clean);
    s.audit(&fine).clean();
    let leaky = s.dir.write("leak-root.tar", leak);
    let audit = s.audit(&leaky);
    audit.leak_at(path, "");
    s.assert_silent(&audit.run);
}

/// Hand-made bytes (leak, clean) from the two work folders' files.
#[track_caller]
fn audit_both(s: &Setup, rel: &str, leak: &[u8], clean: &[u8], member_end: &str) -> Audit {
    let fine = rootfs(s, "clean", rel, clean);
    s.audit(&fine).clean();
    let leaky = rootfs(s, "leak", rel, leak);
    let audit = s.audit(&leaky);
    audit.leak_at(rel, member_end);
    s.assert_silent(&audit.run);
    audit
}

// Item 1: zlib streams.

#[test]
fn a_treehub_json_committed_then_deleted_is_found_in_the_loose_objects_of_a_git_folder() {
    let s = Setup::new();
    let [leak, clean] = work(&s);
    // core.compression=9: the objects are real zlib streams (level 0
    // would leave the secret readable in the raw bytes); gc.auto=0 and no
    // repack: every object stays loose (packs are issue 18).
    let script = "
        git init -q repo
        cp treehub.json repo/
        g() { git -C repo -c user.name=t -c user.email=t@example.test \
              -c core.compression=9 -c gc.auto=0 -c commit.gpgsign=false \"$@\"; }
        g add treehub.json
        g commit -q -m add
        g rm -q treehub.json
        g commit -q -m remove
        test ! -e repo/treehub.json
        test -z \"$(find repo/.git/objects/pack -type f)\"
        git hash-object treehub.json
    ";
    let blob = sh(&leak, script).stdout.trim().to_owned();
    sh(&clean, script);
    assert_eq!(blob.len(), 40, "a blob id: {blob:?}");
    let loose = leak
        .join("repo/.git/objects")
        .join(&blob[..2])
        .join(&blob[2..]);
    assert!(loose.is_file(), "the blob is a loose object");
    // Its raw bytes do not hold the secret: only its zlib content does.
    let raw = fs::read(&loose).unwrap();
    assert!(!raw
        .windows(OAUTH2_SECRET.len())
        .any(|w| w == OAUTH2_SECRET.as_bytes()));
    for (dir, name) in [(&leak, "leak"), (&clean, "clean")] {
        let root = s.dir.mkdir(format!("rootfs-{name}/opt/app"));
        sh(dir, &format!("cp -a repo/.git {}/", root.display()));
    }
    s.audit(&s.dir.join("rootfs-clean")).clean();
    let audit = s.audit(&s.dir.join("rootfs-leak"));
    // Issue 18: the repository is read as git reads it; the finding names
    // the repository, the object and where the first commit has it.
    audit.leak_at("opt/app/.git", ":treehub.json)");
    assert!(
        audit
            .findings
            .iter()
            .any(|f| f.path == "opt/app/.git" && f.member.starts_with(&blob)),
        "not named by its object {blob}: {:#?}",
        audit.findings
    );
    s.assert_silent(&audit.run);
}

// Item 2: archives not at byte 0.

#[test]
fn the_credentials_archive_appended_to_a_shell_script_is_found_by_its_end_record() {
    let s = Setup::new();
    let files = s.unpack("creds");
    let [leak, clean] = work(&s);
    let script = "#!/bin/sh\n# self-extracting installer\nunzip -o \"$0\" -d /etc/sota\nexit 0\n";
    fs::write(leak.join("installer.sh"), script).unwrap();
    fs::write(clean.join("installer.sh"), script).unwrap();
    // The archive as the `zip` program writes it (deflated: nothing of
    // the secret in its raw bytes), appended as is (`cat`, no `zip -A`).
    sh(
        &files,
        &format!(
            "zip -q -9 -X {}/creds.zip {}",
            leak.display(),
            s.entries
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        ),
    );
    sh(&clean, "zip -q -9 -X creds.zip treehub.json app.conf");
    for dir in [&leak, &clean] {
        sh(dir, "cat installer.sh creds.zip > installer.run");
        // unzip reads it directly (exit 1: "extra bytes at beginning").
        let run = tool("unzip").arg("-l").arg(dir.join("installer.run")).run();
        assert!(run.code == 0 || run.code == 1, "{run}");
        run.stdout_has("treehub.json");
    }
    let rel = "opt/vendor/installer.run";
    let leaky = rootfs(
        &s,
        "leak",
        rel,
        &fs::read(leak.join("installer.run")).unwrap(),
    );
    let fine = rootfs(
        &s,
        "clean",
        rel,
        &fs::read(clean.join("installer.run")).unwrap(),
    );
    s.audit(&fine).clean();
    let audit = s.audit(&leaky);
    audit.leak_at(rel, "treehub.json");
    s.assert_silent(&audit.run);
    // A large installer (its zip beyond the first read): found by the end
    // record at the end of the file.
    let mut big = vec![b'#'; 400_000];
    big.extend(fs::read(leak.join("installer.run")).unwrap());
    let big_root = rootfs(&s, "leak-big", rel, &big);
    s.audit(&big_root).leak_at(rel, "treehub.json");
}

// Item 4: formats. Compressed streams: the member chain is not pinned
// (its pseudo-member names are the implementation's).

#[test]
fn a_bzip2_file_holding_treehub_json_is_found() {
    let s = Setup::new();
    compressed(
        &s,
        "bzip2 -k treehub.json",
        "usr/share/app/treehub.json.bz2",
    );
}

#[test]
fn a_multi_stream_pbzip2_file_is_found_when_the_secret_is_in_a_later_stream() {
    let s = Setup::new();
    // 1.9 MB of text, the secret at the end; `-b1`: a stream per 100 kB.
    let script = "
        seq 1 300000 > big
        cat app.conf >> big
        pbzip2 -q -b1 -p1 -c big > big.bz2
        # Many streams: each starts with BZh, the level, a block's magic.
        test \"$(grep -aoE 'BZh[1-9]1AY&SY' big.bz2 | wc -l)\" -ge 10
    ";
    leak_and_clean(&s, script, "big.bz2", "var/log/big.log.bz2", "");
}

#[test]
fn an_xz_file_holding_targets_sec_is_found() {
    let s = Setup::new();
    compressed(&s, "xz -k -T1 targets.sec", "usr/share/keys/targets.sec.xz");
}

#[test]
fn an_lzma_file_holding_treehub_json_is_found() {
    let s = Setup::new();
    compressed(
        &s,
        "lzma -k treehub.json",
        "usr/share/app/treehub.json.lzma",
    );
}

#[test]
fn an_lz4_frame_file_holding_treehub_json_is_found() {
    let s = Setup::new();
    compressed(
        &s,
        "lz4 -q treehub.json treehub.json.lz4",
        "usr/share/app/treehub.json.lz4",
    );
}

#[test]
fn a_legacy_lz4_file_as_oe_core_writes_it_is_found() {
    let s = Setup::new();
    // OE-core's CONVERSION_CMD:lz4 is `lz4 -9 -z -l`.
    compressed(
        &s,
        "lz4 -q -9 -z -l app.conf app.conf.lz4",
        "usr/share/app/app.conf.lz4",
    );
}

#[test]
fn a_zstd_file_holding_treehub_json_is_found() {
    let s = Setup::new();
    compressed(&s, "zstd -q treehub.json", "usr/share/app/treehub.json.zst");
}

#[test]
fn a_zstd_file_of_two_frames_is_found_when_the_secret_is_in_the_second() {
    let s = Setup::new();
    let script = "
        seq 1 20000 > first
        { seq 1 3000; cat app.conf; seq 3000 6000; } > second
        zstd -q -c first > two.zst
        zstd -q -c second >> two.zst
        zstd -q -d -c two.zst | grep -q secret
    ";
    leak_and_clean(&s, script, "two.zst", "var/log/app.log.zst", "");
}

#[test]
fn a_newc_cpio_archive_holding_treehub_json_is_found_at_its_member() {
    let s = Setup::new();
    let script = "
        mkdir -p tree/etc/sota && cp treehub.json tree/etc/sota/
        cd tree && find . | cpio -o -H newc --quiet > ../initramfs.cpio
    ";
    treehub_member(&s, script, "initramfs.cpio", "boot/initramfs.cpio");
}

#[test]
fn an_initramfs_cpio_gz_holding_treehub_json_is_found_at_its_member() {
    let s = Setup::new();
    let script = "
        mkdir -p tree/etc/sota && cp treehub.json tree/etc/sota/
        cd tree && find . | cpio -o -H newc --quiet | gzip -9 > ../initramfs.cpio.gz
    ";
    treehub_member(&s, script, "initramfs.cpio.gz", "boot/initramfs.cpio.gz");
}

#[test]
fn a_deb_whose_data_tar_xz_holds_treehub_json_is_found_at_its_member() {
    let s = Setup::new();
    let script = "
        mkdir -p pkg/DEBIAN pkg/opt/app
        printf 'Package: app\\nVersion: 1.0\\nArchitecture: all\\nMaintainer: t <t@example.test>\\nDescription: test\\n' > pkg/DEBIAN/control
        cp treehub.json pkg/opt/app/
        dpkg-deb -Zxz --root-owner-group --build pkg app.deb >/dev/null
        ar t app.deb | grep -qx data.tar.xz
    ";
    let audit = treehub_member(&s, script, "app.deb", "var/cache/apt/archives/app.deb");
    assert_found_in_member(&audit, "data.tar.xz");
}

#[test]
fn an_ipk_whose_data_tar_gz_holds_treehub_json_is_found_at_its_member() {
    let s = Setup::new();
    // An OpenWrt/opkg-style .ipk: an ar archive of debian-binary,
    // control.tar.gz and data.tar.gz.
    let script = "
        mkdir -p data/opt/app control
        cp treehub.json data/opt/app/
        printf 'Package: app\\nVersion: 1.0\\nArchitecture: all\\n' > control/control
        tar -C data -czf data.tar.gz .
        tar -C control -czf control.tar.gz .
        echo 2.0 > debian-binary
        ar rc app.ipk debian-binary control.tar.gz data.tar.gz
    ";
    let audit = treehub_member(&s, script, "app.ipk", "var/cache/opkg/app.ipk");
    assert_found_in_member(&audit, "data.tar.gz");
}

#[test]
fn an_rpm_whose_payload_holds_treehub_json_is_found_at_its_member() {
    let s = Setup::new();
    let script = r#"
        mkdir -p src top
        cp treehub.json src/
        cat > app.spec <<'EOF'
Name: app
Version: 1.0
Release: 1
Summary: test
License: MIT
BuildArch: noarch
%description
test
%install
mkdir -p %{buildroot}/opt/app
cp %{_sourcedir}/treehub.json %{buildroot}/opt/app/treehub.json
%files
/opt/app/treehub.json
EOF
        HOME=$PWD rpmbuild -bb --quiet --define "_topdir $PWD/top" --define "_sourcedir $PWD/src" app.spec
        cp top/RPMS/noarch/app-1.0-1.noarch.rpm app.rpm
    "#;
    treehub_member(&s, script, "app.rpm", "var/cache/rpm/app.rpm");
}

/// The type flag of a tar's first header.
fn first_type(tar: &[u8]) -> u8 {
    tar[156]
}

#[test]
fn a_sparse_file_holding_the_secret_after_a_hole_is_found_in_a_gnu_and_a_pax_tar() {
    for (format, flag) in [("gnu", b'S'), ("pax", b'x')] {
        let s = Setup::new();
        let script = format!(
            "
            mkdir -p leak clean
            printf 'secret = {OAUTH2_SECRET}\\n' > leak.conf
            printf 'secret = none\\n' > clean.conf
            for k in leak clean; do
                truncate -s 1M $k/sparse.bin
                cat $k.conf >> $k/sparse.bin
                tar -C $k -S --format={format} -cf $k.tar sparse.bin
            done
            "
        );
        sh(s.dir.path(), &script);
        let leak = fs::read(s.dir.join("leak.tar")).unwrap();
        let clean = fs::read(s.dir.join("clean.tar")).unwrap();
        assert_eq!(first_type(&leak), flag, "{format}: a sparse member");
        audit_both(&s, "usr/share/sparse.tar", &leak, &clean, "sparse.bin");
        audit_root_tar(&s, &leak, &clean, "sparse.bin");
    }
}

#[test]
fn a_tar_after_the_end_of_archive_marker_is_searched_as_tar_dash_i_extracts_it() {
    let s = Setup::new();
    let script = "
        printf 'nothing\\n' > readme.txt
        tar -cf first.tar readme.txt
        tar -cf second.tar treehub.json
        cat first.tar second.tar > both.tar
        tar -tif both.tar | grep -qx treehub.json
    ";
    tar_inside_and_as_root(&s, script, "both.tar");
}

#[test]
fn a_tar_starting_with_one_zero_block_is_searched() {
    let s = Setup::new();
    let script = "
        head -c 512 /dev/zero > zero.tar
        tar -cf - treehub.json >> zero.tar
        tar -tif zero.tar | grep -qx treehub.json
    ";
    tar_inside_and_as_root(&s, script, "zero.tar");
}

/// A tar of one member written by hand, then checked with GNU tar: it
/// extracts `treehub.json` with these bytes.
#[track_caller]
fn hand_tar(dir: &TestDir, name: &str, members: &[u8], treehub: &[u8]) -> Vec<u8> {
    let mut tar = members.to_vec();
    tar.extend_from_slice(&TAR_END);
    let path = dir.write(name, &tar);
    let run = tool("tar")
        .args(["-xOf"])
        .arg(&path)
        .arg("treehub.json")
        .run();
    assert_eq!(run.stdout.as_bytes(), treehub, "GNU tar extracts it\n{run}");
    tar
}

/// [`hand_tar`] of the member `member` makes of the secret `treehub.json`
/// (`leak.tar`) and of a clean one (`clean.tar`).
fn hand_tars(s: &Setup, dir: &TestDir, member: impl Fn(&[u8]) -> Vec<u8>) -> (Vec<u8>, Vec<u8>) {
    let leak = hand_tar(dir, "leak.tar", &member(&s.treehub), &s.treehub);
    let clean_treehub = CLEAN_TREEHUB.as_bytes();
    let clean = hand_tar(dir, "clean.tar", &member(clean_treehub), clean_treehub);
    (leak, clean)
}

#[test]
fn a_pax_size_overriding_a_zero_size_in_the_basic_header_is_read() {
    let s = Setup::new();
    let dir = TestDir::new();
    let member = |data: &[u8]| {
        let mut m = pax_header(&[("size", &data.len().to_string())]);
        m.extend(tar_member("treehub.json", b'0', 0o644, 0, data));
        m
    };
    let (leak, clean) = hand_tars(&s, &dir, member);
    // Nested, the tar crate's own reading honours it; as the PATH, the
    // member was read with the basic header's size.
    audit_both(&s, "usr/share/pax.tar", &leak, &clean, "treehub.json");
    audit_root_tar(&s, &leak, &clean, "treehub.json");
    // The whole member, by digest: its size is the pax one.
    let audit = s.audit(&s.dir.join("leak-root.tar"));
    let kinds: Vec<&str> = audit.findings.iter().map(|f| f.kind.as_str()).collect();
    assert!(kinds.contains(&"host-file"), "{}", audit.run);
}

#[test]
fn tar_members_of_type_contiguous_and_unknown_are_searched_as_gnu_tar_extracts_them() {
    for flag in [b'7', b'Q'] {
        let s = Setup::new();
        let dir = TestDir::new();
        let member = |data: &[u8]| tar_member("treehub.json", flag, 0o644, data.len() as u64, data);
        let (leak, clean) = hand_tars(&s, &dir, member);
        audit_both(&s, "usr/share/typed.tar", &leak, &clean, "treehub.json");
        audit_root_tar(&s, &leak, &clean, "treehub.json");
    }
}

#[test]
fn a_zip_member_stored_in_the_central_directory_but_deflated_in_its_local_header_is_inflated() {
    let s = Setup::new();
    let dir = TestDir::new();
    let zip = |data: &[u8]| {
        let mut bytes = RawZip::new()
            .entry(ZipEntry::deflated("treehub.json", data))
            .finish();
        // The central header's method (offset 10) to 0, "stored"; the
        // local header keeps 8, "deflated", as unzip reads it.
        let central = bytes.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
        bytes[central + 10..central + 12].copy_from_slice(&0u16.to_le_bytes());
        let path = dir.write("check.zip", &bytes);
        let run = tool("unzip").arg("-p").arg(&path).arg("treehub.json").run();
        assert_eq!(run.stdout.as_bytes(), data, "unzip extracts it\n{run}");
        bytes
    };
    let leak = zip(&s.treehub);
    let clean = zip(CLEAN_TREEHUB.as_bytes());
    audit_both(&s, "usr/share/odd.zip", &leak, &clean, "treehub.json");
}
