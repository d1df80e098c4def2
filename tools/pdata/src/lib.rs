// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The kernel module's persistent-data code (`rust/pdata/`), compiled for the host so the
//! tools and the tests use the very same implementation.

#![no_std]

#[cfg(test)]
extern crate std;

// An inline module carries the directory, so `pdata.rs` resolves its submodules in
// `rust/pdata/` exactly as it does inside the kernel module.
#[path = "../../../rust"]
mod tree {
    pub mod pdata;
}

pub use tree::pdata::*;
