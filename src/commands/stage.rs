//! `sota-stage stage`: split, render and write, all or nothing, with an
//! optional manifest (design.md sections 4-6).

use std::io;
use std::path::Path;

use crate::cli::StageArgs;
use crate::commands::{file_label, layout_options, read_checked, warnings_text, Outcome};
use crate::crypto::{private_key, x509};
use crate::error::{Error, Result, EXIT_OK};
use crate::plan::layout::{self, DeviceCert};
use crate::plan::manifest::Manifest;
use crate::write::apply::{self, Roots};

pub fn run(args: &StageArgs) -> Result<Outcome> {
    let mut opts = layout_options(&args.fragment, args.host_root.is_some())?;
    opts.root_pinning = !args.no_root_pinning;
    opts.unknown = args.unknown.unwrap_or_default();
    if let (Some(cert), Some(key)) = (&args.device_cert, &args.device_key) {
        let cert_pem = std::fs::read(cert).map_err(|e| Error::io("read", cert, e))?;
        let key_pem = std::fs::read(key).map_err(|e| Error::io("read", key, e))?;
        let certs = x509::parse_pem_certificates(&cert_pem)
            .map_err(|e| Error::Invalid(format!("--device-cert `{}`: {e}", cert.display())))?;
        let [cert_info] = <[_; 1]>::try_from(certs).map_err(|certs: Vec<_>| {
            Error::Invalid(format!(
                "--device-cert `{}` holds {} certificates; give only the device's own",
                cert.display(),
                certs.len()
            ))
        })?;
        let key_info = private_key::parse_private_key_pem(&key_pem)
            .map_err(|e| Error::Invalid(format!("--device-key `{}`: {e}", key.display())))?;
        opts.device_cert = Some(DeviceCert {
            cert: cert_info,
            key: key_info,
        });
    }

    let label = file_label(&args.credentials);
    let (archive, findings) = read_checked(&args.credentials, &opts, args.allow_http)?;
    let plan = layout::plan(&label, &archive, &findings, &opts)?;
    let manifest = Manifest::from_plan(&plan);
    if let Some(path) = &args.manifest {
        let roots = [Some(args.device_root.as_path()), args.host_root.as_deref()];
        check_manifest_path(path, &roots)?;
    }
    let roots = Roots {
        device: &args.device_root,
        host: args.host_root.as_deref(),
    };
    let applied = apply::apply(&plan, &roots, opts.epoch, args.force)?;
    if let Some(path) = &args.manifest {
        apply::write_file(
            path,
            manifest.to_json().as_bytes(),
            layout::MODE_FILE,
            opts.epoch,
        )?;
    }
    let mut stderr = warnings_text(&label, &plan.warnings);
    stderr.push_str(&format!(
        "staged {} for {}: {} files written, {} already in place\n",
        label, plan.method, applied.written, applied.unchanged
    ));
    Ok(Outcome {
        stdout: String::new(),
        stderr,
        exit: EXIT_OK,
    })
}

/// The manifest is written after the roots, so a manifest that cannot be
/// written would fail the run with the roots already changed: its folder is
/// checked with everything else, before the first write (design.md
/// section 5). A folder that does not exist yet is fine when it is a root
/// or a parent of one: staging creates it.
fn check_manifest_path(path: &Path, roots: &[Option<&Path>]) -> Result<()> {
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    match std::fs::metadata(folder) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(Error::io(
                "write the manifest in",
                folder,
                io::Error::other("not a folder"),
            ))
        }
        Err(e)
            if e.kind() == io::ErrorKind::NotFound
                && roots.iter().flatten().any(|r| r.starts_with(folder)) => {}
        Err(e) => return Err(Error::io("write the manifest in", folder, e)),
    }
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
        return Err(Error::io(
            "write the manifest to",
            path,
            io::Error::other("it is a folder"),
        ));
    }
    Ok(())
}
