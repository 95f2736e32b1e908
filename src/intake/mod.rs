//! Intake: reading a credentials archive (the only module that does) and
//! the catalogue of the entries it may hold.

pub mod archive;
pub mod catalogue;
