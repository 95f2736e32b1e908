//! `sota-stage render`: aktualizr's config fragment(s) for a method, to
//! standard output, a file or a folder. The same templates and checks as
//! `stage`; with an archive, the same refusals.

use std::path::{Path, PathBuf};

use crate::aktualizr::paths::SYSTEM_CONFIG_DIR;
use crate::commands::shared::{
    file_label, flag_file, options_text, read_checked, read_templates, refuse_outputs_over_inputs,
    template_inputs, Named, Outcome,
};
use crate::error::{Error, Result, EXIT_OK};
use crate::escape::escape;
use crate::plan::files::file_mode;
use crate::plan::fragments::{self, Fragment};
use crate::plan::options::{FragmentOptions, StageOptions, UnknownPolicy};
use crate::plan::staging;
use crate::report::counted;
use crate::write::apply;

/// Which fragment to render, when not all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Only {
    /// `20-sota-<method>.toml`.
    Method,
    /// `40-hardware-id.toml`.
    HardwareId,
}

/// Where the fragments go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Standard output; refused for a fragment that holds a secret.
    Stdout,
    /// One file; the configuration holds one fragment.
    File(PathBuf),
    /// A folder, each fragment under its own name.
    Dir(PathBuf),
}

/// Everything one `render` run needs.
#[derive(Debug)]
pub struct Config {
    pub fragment: FragmentOptions,
    pub template_dir: Option<PathBuf>,
    /// Check that this archive supports the method first.
    pub credentials: Option<PathBuf>,
    pub allow_http: bool,
    pub output: Output,
    pub only: Option<Only>,
    pub epoch: i64,
    pub now: i64,
    /// The other files the command line read (password and PIN files),
    /// named by their flags: no output may be one.
    pub inputs: Vec<Named>,
    /// What the command line warns about (aktualizr's example PIN).
    pub warnings: Vec<String>,
}

pub fn run(config: &Config) -> Result<Outcome> {
    let templates = read_templates(config.template_dir.as_deref())?;
    let opts = &config.fragment;
    if let Some(path) = &config.credentials {
        let (archive, findings) =
            read_checked(path, &opts.p12_password, config.allow_http, config.now)?;
        // The same refusals as `stage`, without writing anything.
        let stage = StageOptions {
            fragment: opts.clone(),
            device_cert: None,
            root_pinning: true,
            unknown: UnknownPolicy::Drop,
            with_host: false,
            epoch: config.epoch,
            now: config.now,
        };
        staging::plan(&file_label(path), &archive, &findings, &stage, &templates)?;
    }
    let fragments: Vec<Fragment> = match (config.only, &opts.hardware_id) {
        (None, _) => fragments::fragments(opts, &templates)?,
        (Some(Only::Method), _) => vec![fragments::method_fragment(opts, &templates)?],
        (Some(Only::HardwareId), Some(id)) => {
            vec![fragments::hardware_id_fragment(id, &templates)?]
        }
        (Some(Only::HardwareId), None) => Vec::new(),
    };
    check_outputs(config, &fragments)?;
    let stderr = if config.only == Some(Only::HardwareId) {
        String::new()
    } else {
        options_text(&config.warnings, opts)
    };
    // Written: what went where with its mode, for the one-line summary.
    let written = |path: &Path, f: &Fragment| -> Result<String> {
        let mode = file_mode(f.secret);
        apply::write_file(path, f.text.expose().as_bytes(), mode, config.epoch)?;
        Ok(format!("{} ({mode:04o})", f.name))
    };
    let summary = |what: Vec<String>, place: &Path| Outcome {
        stdout: String::new(),
        stderr: format!(
            "{stderr}rendered {} for {} into `{}`: {}\n",
            counted(what.len() as u64, "fragment", "fragments"),
            opts.method,
            escape(&place.display().to_string()),
            what.join(", ")
        ),
        exit: EXIT_OK,
    };
    match &config.output {
        Output::Dir(dir) => {
            let what = fragments
                .iter()
                .map(|f| written(&dir.join(&f.name), f))
                .collect::<Result<Vec<_>>>()?;
            Ok(summary(what, dir))
        }
        Output::File(path) => {
            let what = fragments
                .iter()
                .map(|f| written(path, f))
                .collect::<Result<Vec<_>>>()?;
            Ok(summary(what, path))
        }
        Output::Stdout => {
            if let Some(secret) = fragments.iter().find(|f| f.secret) {
                return Err(Error::Usage(format!(
                    "`{}` holds a password or PIN and is not printed; write it with --output FILE (mode 0600)",
                    secret.name
                )));
            }
            let mut stdout = String::new();
            for f in &fragments {
                if fragments.len() > 1 {
                    stdout.push_str(&format!("# --- {SYSTEM_CONFIG_DIR}/{} ---\n", f.name));
                }
                stdout.push_str(f.text.expose());
            }
            Ok(Outcome {
                stdout,
                stderr,
                exit: EXIT_OK,
            })
        }
    }
}

/// No fragment is written over a file the run reads: the archive, a
/// template, a password or PIN file.
fn check_outputs(config: &Config, fragments: &[Fragment]) -> Result<()> {
    let mut inputs: Vec<Named> = config
        .credentials
        .iter()
        .map(|c| (flag_file("--credentials", c), c.clone()))
        .collect();
    inputs.extend(template_inputs(config.template_dir.as_deref()));
    inputs.extend(config.inputs.iter().cloned());
    let outputs: Vec<Named> = match &config.output {
        Output::Stdout => Vec::new(),
        Output::File(path) => vec![(flag_file("--output", path), path.clone())],
        Output::Dir(dir) => fragments
            .iter()
            .map(|f| {
                let path = dir.join(&f.name);
                (flag_file("--output-dir's", &path), path)
            })
            .collect(),
    };
    refuse_outputs_over_inputs(&outputs, &inputs)
}
