//! `sota-stage inspect` (being written).

use crate::cli::InspectArgs;
use crate::commands::Outcome;
use crate::error::{Error, Result};

pub fn run(_args: &InspectArgs) -> Result<Outcome> {
    Err(Error::Usage("inspect is being written".into()))
}
