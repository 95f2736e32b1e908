//! `sota-stage render`: aktualizr's config fragment(s) for a method, to
//! standard output or a file. The same templates and checks as `stage`.

use crate::aktualizr::paths::SYSTEM_CONFIG_DIR as CONF_DIR;
use crate::cli::{FragmentKind, RenderArgs};
use crate::commands::{file_label, layout_options, read_checked, Outcome};
use crate::error::{Error, Result, EXIT_OK};
use crate::plan::layout::{self, MODE_FILE, MODE_SECRET};
use crate::write::apply;

pub fn run(args: &RenderArgs) -> Result<Outcome> {
    let opts = layout_options(&args.fragment, false)?;
    if let Some(path) = &args.credentials {
        let (archive, findings) = read_checked(path, &opts, args.allow_http)?;
        // The same refusals as `stage`, without writing anything.
        layout::plan(
            &file_label(path),
            &archive,
            &findings,
            &layout::Options {
                unknown: layout::UnknownPolicy::Drop,
                ..opts.clone()
            },
        )?;
    }
    let mut fragments = layout::fragments(&opts)?;
    match args.only {
        None => {}
        Some(FragmentKind::Method) => fragments.truncate(1),
        Some(FragmentKind::HardwareId) => {
            if opts.hardware_id.is_none() {
                return Err(Error::Usage(
                    "--fragment hardware-id needs --hardware-id (or SOTA_HARDWARE_ID)".into(),
                ));
            }
            fragments.drain(..1);
        }
    }
    if let Some(dir) = &args.output_dir {
        for f in &fragments {
            let mode = if f.secret { MODE_SECRET } else { MODE_FILE };
            apply::write_file(
                &dir.join(&f.name),
                f.text.expose().as_bytes(),
                mode,
                opts.epoch,
            )?;
        }
        return Ok(Outcome::default());
    }
    match &args.output {
        Some(path) => {
            let [fragment] = fragments.as_slice() else {
                return Err(Error::Usage(
                    "--output takes one fragment, but --hardware-id adds a second (40-hardware-id.toml); pick one with --fragment, or use --output-dir".into(),
                ));
            };
            let mode = if fragment.secret {
                MODE_SECRET
            } else {
                MODE_FILE
            };
            apply::write_file(path, fragment.text.expose().as_bytes(), mode, opts.epoch)?;
            Ok(Outcome::default())
        }
        None => {
            if let Some(secret) = fragments.iter().find(|f| f.secret) {
                return Err(Error::Usage(format!(
                    "`{}` holds a password or PIN and is not printed; write it with --output FILE (mode 0600)",
                    secret.name
                )));
            }
            let mut stdout = String::new();
            for f in &fragments {
                if fragments.len() > 1 {
                    stdout.push_str(&format!("# --- {CONF_DIR}/{} ---\n", f.name));
                }
                stdout.push_str(f.text.expose());
            }
            Ok(Outcome {
                stdout,
                stderr: String::new(),
                exit: EXIT_OK,
            })
        }
    }
}
