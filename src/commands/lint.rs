//! `sota-stage lint` (being written).

use crate::cli::LintArgs;
use crate::commands::Outcome;
use crate::error::{Error, Result};

pub fn run(_args: &LintArgs) -> Result<Outcome> {
    Err(Error::Usage("lint is being written".into()))
}
