// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The sources live outside this package (`rust/pdata/`, through `#[path]`). Cargo keeps
//! rustc's list of them relative to the package and then looks for them in the wrong
//! place, so without this it never saw them change and kept an old build.

fn main() {
    println!("cargo:rerun-if-changed=../../rust/pdata.rs");
    println!("cargo:rerun-if-changed=../../rust/pdata");
    println!("cargo:rerun-if-changed=src");
}
