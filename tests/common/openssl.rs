//! The `openssl` command (3.0), run in a test's folder: the one wrapper
//! for the integration tests' [`super::Pki`] and the unit tests' key
//! material (`src/test_support.rs` includes this file).

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

/// Runs `openssl` in `dir`; see [`openssl_with`].
#[track_caller]
pub fn openssl<I, S>(dir: &Path, args: I) -> Vec<u8>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    openssl_with(OsStr::new("openssl"), dir, args)
}

/// Runs the openssl binary `program` in `dir` and returns its stdout. Fails
/// the test, never skips it, when openssl is missing or fails.
#[track_caller]
pub fn openssl_with<I, S>(program: &OsStr, dir: &Path, args: I) -> Vec<u8>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let shown = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let output = match Command::new(program).args(&args).current_dir(dir).output() {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!(
                "`{}` not found: install openssl (apt-get install openssl)",
                program.to_string_lossy()
            )
        }
        Err(e) => panic!("cannot run `openssl {shown}`: {e}"),
    };
    if !output.status.success() {
        panic!(
            "`openssl {shown}` failed ({}) in `{}`:\n{}{}",
            output.status,
            dir.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    output.stdout
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
