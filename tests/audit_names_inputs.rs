//! `audit`: names and inputs (issue 17, items 5 and 7). A secret in a
//! file name, a symlink target or an xattr is found and never printed;
//! the PATH is told by content (a plain or empty file is an error naming
//! it, never echoing it; a zip is searched), an unreadable root is exit 3;
//! an RSA public key is not the private key; tar paths are normalised
//! before the mode checks.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use common::audit::{tar_member, TAR_END};
use common::{sh, tool, Audit, Cmd, Run, Setup, OAUTH2_SECRET};

/// A `tar` of `folder` (GNU tar, its xattrs kept), next to it.
#[track_caller]
fn tar_of(s: &Setup, folder: &Path, name: &str) -> std::path::PathBuf {
    let tar = s.dir.join(name);
    tool("tar")
        .args(["--xattrs", "--xattrs-include=user.*", "-C"])
        .arg(folder)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .run()
        .success();
    tar
}

/// Audited in JSON and in text, as a folder and as a tar of it: a
/// host-secret error at a path for which `path_ok` holds, and no secret
/// in any output.
#[track_caller]
fn found_silently(s: &Setup, root: &Path, path_ok: impl Fn(&str) -> bool) {
    let tar = tar_of(s, root, "rootfs.tar");
    for input in [root, tar.as_path()] {
        let audit = s.audit(input);
        audit.run.code(1);
        s.assert_silent(&audit.run);
        let hit = audit
            .errors()
            .iter()
            .any(|f| f.kind == "host-secret" && path_ok(&f.path));
        if !hit {
            audit.fail("no host-secret error at the expected path");
        }
        let text = s.audit_text(input);
        text.code(1);
        s.assert_silent(&text);
    }
}

// Item 5: names.

#[test]
fn a_file_name_holding_the_client_secret_is_reported_and_shown_redacted() {
    let s = Setup::new();
    let root = s.dir.mkdir("rootfs/etc");
    fs::write(root.join(format!("{OAUTH2_SECRET}.conf")), "nothing here\n").unwrap();
    found_silently(&s, &s.dir.join("rootfs"), |p| p.starts_with("etc/"));
}

#[test]
fn a_file_named_after_the_secret_and_holding_it_is_reported_without_printing_its_name() {
    let s = Setup::new();
    let root = s.dir.mkdir("rootfs/etc");
    fs::write(
        root.join(format!("{OAUTH2_SECRET}.conf")),
        format!("secret = {OAUTH2_SECRET}\n"),
    )
    .unwrap();
    found_silently(&s, &s.dir.join("rootfs"), |p| p.starts_with("etc/"));
}

#[test]
fn a_symlink_target_holding_the_client_secret_is_reported_at_the_link() {
    let s = Setup::new();
    let lib = s.dir.mkdir("rootfs/usr/lib");
    symlink(format!("/opt/{OAUTH2_SECRET}/token"), lib.join("token")).unwrap();
    found_silently(&s, &s.dir.join("rootfs"), |p| p == "usr/lib/token");
}

#[test]
fn an_xattr_value_holding_the_client_secret_is_reported_at_its_file() {
    let s = Setup::new();
    let bin = s.dir.mkdir("rootfs/usr/bin");
    let app = bin.join("app");
    fs::write(&app, "#!/bin/sh\n").unwrap();
    // setfattr (Debian's `attr`) is not among the tools CI installs;
    // python3 is, and its os.setxattr is the same system call. Fails
    // loudly where the file system has no user xattrs.
    let script = format!(
        "import os, sys\n\
         os.setxattr(sys.argv[1], 'user.x', b'token={OAUTH2_SECRET}')\n\
         assert os.getxattr(sys.argv[1], 'user.x').endswith(b'{OAUTH2_SECRET}')\n"
    );
    tool("python3")
        .arg("-c")
        .arg(script)
        .arg(&app)
        .run()
        .success();
    found_silently(&s, &s.dir.join("rootfs"), |p| p == "usr/bin/app");
}

#[test]
fn a_finding_on_the_root_folder_itself_names_the_root() {
    let s = Setup::new();
    let root = s.dir.mkdir("rootfs");
    fs::write(root.join("hostname"), "device\n").unwrap();
    let script = format!(
        "import os, sys\n\
         os.setxattr(sys.argv[1], 'user.x', b'token={OAUTH2_SECRET}')\n"
    );
    tool("python3")
        .arg("-c")
        .arg(script)
        .arg(&root)
        .run()
        .success();
    // JSON: the root's own path is the empty relative path.
    let audit = s.audit(&root);
    audit.run.code(1);
    if !audit
        .errors()
        .iter()
        .any(|f| f.kind == "host-secret" && f.path.is_empty())
    {
        audit.fail("no host-secret error on the root itself");
    }
    // Text: the line names the root as given, never an empty path.
    let text = s.audit_text(&root);
    text.code(1);
    s.assert_silent(&text);
    let named = format!("error: {}: an extended attribute holds", root.display());
    assert!(
        text.stdout.lines().any(|l| l.starts_with(&named)),
        "{}",
        text.stdout
    );
    assert!(!text.stdout.contains("error: : "), "{}", text.stdout);
}

// Item 7: wrong answers.

#[test]
fn an_rsa_public_key_as_pem_or_one_line_of_base64_is_not_reported_as_the_private_key() {
    let s = Setup::rsa();
    let ssl = s.dir.mkdir("rootfs/etc/ssl");
    fs::write(ssl.join("targets-pub.pem"), &s.public_text).unwrap();
    // The same key's base64 on one line (a JSON config, `base64 -w0`):
    // the modulus sits at the same base64 alignment as in the private
    // key's PEM lines 2 to 5, which are the private key's patterns.
    let one_line: String = s
        .public_text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    fs::write(
        ssl.join("targets-pub.json"),
        format!("{{\"public_key\": \"{one_line}\"}}\n"),
    )
    .unwrap();
    let audit = s.audit(&s.dir.join("rootfs"));
    audit.run.code(0);
    assert_eq!(audit.findings, vec![], "{}", audit.run);
}

/// Neither stream holds any 8 bytes in a row of `content`.
#[track_caller]
fn echoes_nothing_of(run: &Run, content: &str) {
    for w in content.as_bytes().windows(8) {
        let w = std::str::from_utf8(w).unwrap();
        run.output_lacks(w);
    }
}

#[test]
fn a_plain_text_file_as_path_is_an_error_naming_it_and_echoing_none_of_its_bytes() {
    let s = Setup::rsa();
    // The first base64 line of a PEM private key (the targets key's own).
    let line = s
        .private_text
        .lines()
        .find(|l| !l.starts_with("-----"))
        .unwrap()
        .to_owned();
    assert!(line.len() >= 60, "a base64 line: {line}");
    let readme = s.dir.write("README.md", format!("{line}\n"));
    for json in [true, false] {
        let run = s.cmd(&readme, json).run();
        run.code(1).stderr_has(&readme.display().to_string());
        echoes_nothing_of(&run, &line);
    }
}

#[test]
fn an_empty_file_as_path_is_an_error_naming_it() {
    let s = Setup::new();
    let empty = s.dir.write("rootfs.tar", "");
    let run = s.cmd(&empty, true).run();
    run.code(1).stderr_has(&empty.display().to_string());
}

#[test]
fn a_zip_given_as_path_is_searched() {
    let s = Setup::new();
    // A copy of the credentials archive.
    let copy = s.dir.write("copy.zip", fs::read(&s.zip).unwrap());
    let audit = s.audit(&copy);
    audit.run.code(1);
    let kinds: Vec<&str> = audit.findings.iter().map(|f| f.kind.as_str()).collect();
    assert!(kinds.contains(&"credentials-archive"), "{}", audit.run);
    // A zip the `zip` program wrote (deflated) holding treehub.json.
    let files = s.unpack("creds");
    sh(&files, "zip -q -9 -X ../bundle.zip treehub.json root.json");
    let audit = s.audit(&s.dir.join("bundle.zip"));
    audit.run.code(1);
    let hit = audit.errors().iter().any(|f| {
        f.kind == "host-file"
            && (f.member.ends_with("treehub.json") || f.path.ends_with("treehub.json"))
    });
    assert!(hit, "{}", audit.run);
    s.assert_silent(&audit.run);
}

/// `sota-stage` as root without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH
/// (util-linux `setpriv`): file modes bind it like any user, so a root
/// file system it may not read is really unreadable to it.
fn without_dac(s: &Setup, root: &Path) -> Cmd {
    tool("setpriv")
        .arg("--bounding-set=-dac_override,-dac_read_search")
        .arg(env!("CARGO_BIN_EXE_sota-stage"))
        .args(["audit", "--format", "json", "--credentials"])
        .arg(&s.zip)
        .arg(root)
}

#[test]
fn an_unreadable_root_is_exit_3_naming_it() {
    let s = Setup::new();
    let folder = s.dir.mkdir("rootfs");
    fs::write(folder.join("x.conf"), "x\n").unwrap();
    fs::set_permissions(&folder, fs::Permissions::from_mode(0o000)).unwrap();
    let tar = s.dir.write("rootfs.tar", TAR_END);
    fs::set_permissions(&tar, fs::Permissions::from_mode(0o000)).unwrap();
    for root in [&folder, &tar] {
        without_dac(&s, root)
            .run()
            .code(3)
            .stderr_has(&root.display().to_string());
    }
    fs::set_permissions(&folder, fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn a_tar_path_with_a_double_slash_is_normalised_for_the_mode_check() {
    let s = Setup::new();
    let tar = |mode: u32| {
        let key = b"not a real key, but the place of one\n";
        let mut t = Vec::new();
        t.extend(tar_member("var/", b'5', 0o755, 0, b""));
        t.extend(tar_member("var/sota/", b'5', 0o700, 0, b""));
        t.extend(tar_member("var/sota/import/", b'5', 0o700, 0, b""));
        t.extend(tar_member(
            "var//sota/import/pkey.pem",
            b'0',
            mode,
            key.len() as u64,
            key,
        ));
        t.extend_from_slice(&TAR_END);
        t
    };
    let fine = s.dir.write("fine.tar", tar(0o600));
    s.audit(&fine).clean();
    let open = s.dir.write("open.tar", tar(0o644));
    let audit: Audit = s.audit(&open);
    audit.run.code(1);
    let found: Vec<(&str, &str, &str)> = audit
        .findings
        .iter()
        .map(|f| (f.path.as_str(), f.member.as_str(), f.kind.as_str()))
        .collect();
    assert_eq!(
        found,
        vec![("var/sota/import/pkey.pem", "", "mode")],
        "{}",
        audit.run
    );
}
