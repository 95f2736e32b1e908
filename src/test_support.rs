//! The unit tests' share of the test kit in `tests/common`: the same files,
//! compiled into the library's tests, so that unit and integration tests
//! have one scratch folder ([`TestDir`]), one fixture locator
//! ([`upstream`]), one `openssl` wrapper and one tree walker ([`tree`]).

// Each unit test module uses part of the kit.
#![allow(dead_code, unused_imports)]

#[path = "../tests/common/dir.rs"]
mod dir;
#[path = "../tests/common/fixtures.rs"]
mod fixtures;
#[path = "../tests/common/openssl.rs"]
mod openssl;
#[path = "../tests/common/tree.rs"]
mod tree;

pub use dir::TestDir;
pub use fixtures::{upstream, upstream_config};
pub use openssl::{csr, genpkey, openssl, self_signed};
pub use tree::{tree, Node};
