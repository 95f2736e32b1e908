//! One module per command. Each turns validated arguments into an
//! [`Outcome`]: what to print and the exit status. Nothing here prints.

use crate::cli::Command;
use crate::error::Result;

pub mod inspect;
pub mod lint;

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
        Command::Lint(args) => lint::run(&args),
    }
}
