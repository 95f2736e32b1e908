//! The `openssl` command (3.0), run in a test's folder: the one wrapper
//! for the integration tests' [`super::Pki`] and the unit tests' key
//! material (`src/test_support.rs` includes this file).

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output};

/// Runs `openssl` in `dir` and returns its stdout. Fails the test, never
/// skips it, when openssl is missing or fails.
#[track_caller]
pub fn openssl<I, S>(dir: &Path, args: I) -> Vec<u8>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let (output, shown) = output(dir, args);
    if !output.status.success() {
        panic!(
            "`{shown}` failed ({}) in `{}`:\n{}{}",
            output.status,
            dir.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    output.stdout
}

/// Runs `openssl` in `dir`: whether it succeeded, and its stdout then its
/// stderr. For checks whose answer is the exit status (`x509 -checkend`,
/// `verify`) or is printed on stderr (`pkcs12 -info`). Fails the test when
/// openssl is missing.
#[track_caller]
pub fn openssl_status<I, S>(dir: &Path, args: I) -> (bool, String)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let (output, _) = output(dir, args);
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

/// The finished `openssl` run, and its command line for messages.
#[track_caller]
fn output<I, S>(dir: &Path, args: I) -> (Output, String)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let shown: Vec<_> = args.iter().map(|a| a.to_string_lossy()).collect();
    let shown = format!("openssl {}", shown.join(" "));
    match Command::new("openssl")
        .args(&args)
        .current_dir(dir)
        .output()
    {
        Ok(output) => (output, shown),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("`openssl` not found: install openssl (apt-get install openssl)")
        }
        Err(e) => panic!("cannot run `{shown}`: {e}"),
    }
}

/// A new private key (PKCS#8 PEM) in `dir/out`: `algorithm` as `genpkey`
/// names it, with its `-pkeyopt`s (a curve, a size).
#[track_caller]
pub fn genpkey(dir: &Path, out: &str, algorithm: &str, pkeyopts: &[&str]) {
    let mut args = vec!["genpkey", "-algorithm", algorithm];
    for opt in pkeyopts {
        args.extend(["-pkeyopt", opt]);
    }
    args.extend(["-out", out]);
    openssl(dir, args);
}

/// A new EC P-256 private key (PKCS#8 PEM) in `dir/out`, the key most
/// tests issue certificates for.
#[track_caller]
pub fn ec_p256_key(dir: &Path, out: &str) {
    genpkey(dir, out, "EC", &["ec_paramgen_curve:P-256"]);
}

/// A self-signed certificate `out` for `key`, with the extensions of
/// section `extensions` of `dir/openssl.cnf`, and `extra` arguments
/// (`-sha256`, `-set_serial`).
#[track_caller]
pub fn self_signed(
    dir: &Path,
    key: &str,
    subject: &str,
    days: u32,
    extensions: &str,
    out: &str,
    extra: &[&str],
) {
    let days = days.to_string();
    let mut args = vec![
        "req",
        "-config",
        "openssl.cnf",
        "-x509",
        "-new",
        "-key",
        key,
        "-subj",
        subject,
        "-days",
        &days,
        "-extensions",
        extensions,
        "-out",
        out,
    ];
    args.extend(extra);
    openssl(dir, args);
}

/// A certificate request `out` for `key`, with `dir/openssl.cnf`.
#[track_caller]
pub fn csr(dir: &Path, key: &str, subject: &str, out: &str) {
    openssl(
        dir,
        [
            "req",
            "-config",
            "openssl.cnf",
            "-new",
            "-key",
            key,
            "-subj",
            subject,
            "-out",
            out,
        ],
    );
}
