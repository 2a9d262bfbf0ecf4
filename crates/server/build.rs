//! The dashboard build (`dashboard/dist`) is embedded into the server by rust-embed. Cargo
//! does not know that a new file in that folder changes the server, so tell it; and create
//! the folder when the dashboard was never built, so the server still compiles (and its `/`
//! then says the dashboard is not built).

use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let dist = manifest.join("../../dashboard/dist");
    if let Err(e) = std::fs::create_dir_all(&dist) {
        println!("cargo::warning=cannot create {}: {e}", dist.display());
    }
    // A folder is scanned recursively for changes.
    println!("cargo::rerun-if-changed={}", dist.display());
    println!("cargo::rerun-if-changed=build.rs");
}
