//! One module per command. Each turns validated arguments into an
//! [`Outcome`]: what to print and the exit status. Nothing here prints.

use crate::cli::Command;
use crate::error::Result;

pub mod inspect;
pub mod lint;
pub mod render;
pub mod stage;
pub mod verify;

/// What a command wants printed, and the exit status.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub stdout: String,
    pub stderr: String,
    pub exit: u8,
}

/// Runs one command.
pub fn run(command: Command) -> Result<Outcome> {
    match command {
        Command::Inspect(args) => inspect::run(&args),
        Command::Stage(args) => stage::run(&args),
        Command::Render(args) => render::run(&args),
        Command::Verify(args) => verify::run(&args),
        Command::Lint(args) => lint::run(&args),
    }
}

/// The layout options common to `stage` and `render`, from the command
/// line and the environment.
fn layout_options<'a>(
    args: &'a crate::cli::FragmentArgs,
    with_host: bool,
) -> Result<crate::plan::layout::Options<'a>> {
    use crate::error::Error;
    use crate::plan::layout::{Hsm, Options, UnknownPolicy};
    use crate::plan::methods::Method;

    let mut hsm = Hsm::default();
    let hsm_flags = [
        args.p11_module.is_some(),
        args.p11_pin.is_some(),
        args.p11_pin_file.is_some(),
        args.p11_tls_cert_id.is_some(),
        args.p11_tls_key_id.is_some(),
        args.p11_uptane_key_id.is_some(),
    ];
    if args.method != Method::DeviceCredHsm && hsm_flags.contains(&true) {
        return Err(Error::Usage(format!(
            "the --p11-* options are for device-cred-hsm, not {}",
            args.method
        )));
    }
    if let Some(module) = &args.p11_module {
        hsm.module = module.clone();
    }
    if let Some(pin) = &args.p11_pin {
        hsm.pin = crate::secret::Secret::new(pin.clone());
    } else if let Some(path) = &args.p11_pin_file {
        hsm.pin = crate::cli::read_secret_file(path, "--p11-pin-file")?;
    }
    for (value, slot) in [
        (&args.p11_tls_cert_id, &mut hsm.tls_cert_id),
        (&args.p11_tls_key_id, &mut hsm.tls_key_id),
        (&args.p11_uptane_key_id, &mut hsm.uptane_key_id),
    ] {
        if let Some(v) = value {
            *slot = v.clone();
        }
    }
    if let Some(id) = &args.hardware_id {
        crate::plan::layout::check_hardware_id(id)?;
    }
    Ok(Options {
        method: args.method,
        hardware_id: args.hardware_id.clone(),
        p12_password: args.p12.resolve()?,
        hsm,
        device_cert: None,
        root_pinning: true,
        unknown: UnknownPolicy::Refuse,
        with_host,
        epoch: source_date_epoch()?,
        now: crate::crypto::x509::now_unix(),
        template_dir: args.template_dir.as_deref(),
    })
}

/// Reads and checks an archive for `stage` and `render`.
fn read_checked(
    path: &std::path::Path,
    opts: &crate::plan::layout::Options<'_>,
    allow_http: bool,
) -> Result<(crate::intake::archive::Archive, crate::checks::Findings)> {
    let archive = crate::intake::archive::read(path, &crate::intake::archive::Limits::default())?;
    let findings = crate::checks::check_archive(
        &archive,
        &crate::checks::Context {
            p12_password: &opts.p12_password,
            allow_http,
            now: opts.now,
        },
    );
    Ok((archive, findings))
}

/// `SOURCE_DATE_EPOCH`, or the documented default when it is unset.
fn source_date_epoch() -> Result<i64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(text) if !text.is_empty() => {
            crate::time::parse_source_date_epoch(&text).map_err(crate::error::Error::Usage)
        }
        _ => Ok(crate::time::DEFAULT_SOURCE_DATE_EPOCH),
    }
}

/// The archive's file name, without its folder: messages and reports do not
/// depend on where the archive sits.
fn file_label(path: &std::path::Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Warnings, one per line, for standard error, naming the archive.
fn warnings_text(label: &str, problems: &[crate::report::Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("{}: {label}: {}\n", p.severity.as_str(), p.message))
        .collect()
}
