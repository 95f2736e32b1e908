//! Writing: applying a plan to the roots, all or nothing. The only module
//! that changes files.

pub mod apply;
