//! aktualizr's configuration dialect: the schema of its keys, its INI-style
//! parser as Boost reads it, and the lint rules and explanations built on
//! them.

pub mod dialect;
pub mod lint;
pub mod paths;
