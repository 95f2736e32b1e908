//! aktualizr's configuration dialect, one concern a file:
//!
//! - [`paths`]: where aktualizr looks on a device.
//! - [`schema`]: the sections and keys aktualizr reads, their types,
//!   defaults, and which are secret.
//! - [`ini`]: the parser, as Boost's `read_ini` splits a file.
//! - [`value`]: what aktualizr gets from a raw value of each type.
//! - [`diagnostic`]: one problem in one file.
//! - [`names`]: the known name closest to a mistyped one.
//! - [`rules`]: the lint checks of a file and their wording;
//!   [`value_rules`]: the checks of one value against its type.
//! - [`servers`]: the server URLs aktualizr derives from `tls.server`.
//! - [`explain`]: the merge in aktualizr's order and what `--explain` shows.
//!
//! This file defines nothing, so no module imports its parent. Imports go
//! one way: `paths`, `schema`, `ini`, `names`, `servers` and `diagnostic`
//! import no sibling outside their tests; `value` imports `ini` and
//! `schema`; `value_rules`, `rules` and `explain` import those, `rules`
//! imports `value_rules`, and nothing imports `rules` or `explain` but the
//! `lint` command and `render`'s fragment check.

pub mod diagnostic;
pub mod explain;
pub mod ini;
pub mod names;
pub mod paths;
pub mod rules;
pub mod schema;
pub mod servers;
pub mod value;
pub mod value_rules;
