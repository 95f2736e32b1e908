//! One module per command. Each takes its validated [`Config`] (built by
//! [`crate::cli`]) and returns an [`Outcome`]: what to print and the exit
//! status. Nothing here prints. Commands read their inputs (the archive
//! through [`crate::intake`], the template folder once) and hand bytes to
//! the pure core; [`crate::write`] writes.
//!
//! The commands: [`inspect`], [`stage`], [`render`], [`verify`], [`lint`],
//! [`audit`], [`device_certs`]. `shared` reads and checks the archive and
//! the template folder once for those that take them, and words hints and
//! refusals with flag names (the core never names a flag).

pub mod audit;
pub mod device_certs;
pub mod inspect;
pub mod lint;
pub mod render;
mod shared;
pub mod stage;
pub mod verify;

pub use shared::Outcome;

use crate::error::Result;

/// One command, configured.
#[derive(Debug)]
pub enum Config {
    Inspect(inspect::Config),
    Stage(Box<stage::Config>),
    Render(render::Config),
    Verify(verify::Config),
    Lint(lint::Config),
    Audit(audit::Config),
    DeviceCerts(Box<device_certs::Config>),
}

/// Runs one command. `progress` is told what a long wait is for, while the
/// run waits (the [`Outcome`] comes only at its end): one line, without a
/// newline.
pub fn run(config: Config, progress: fn(&str)) -> Result<Outcome> {
    match config {
        Config::Inspect(c) => inspect::run(&c),
        Config::Stage(c) => stage::run(&c, progress).map_err(shared::with_flags),
        Config::Render(c) => render::run(&c).map_err(shared::with_flags),
        Config::Verify(c) => verify::run(&c),
        Config::Lint(c) => lint::run(&c),
        Config::Audit(c) => audit::run(&c),
        Config::DeviceCerts(c) => device_certs::run(&c, progress),
    }
}
