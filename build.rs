//! Link the binary as a position-dependent executable on Linux.
//!
//! A PIE of this size carries ~100k relative relocations that the dynamic
//! loader applies at every start: it reads the relocation table and dirties
//! every page of .data.rel.ro, which is most of what `redlab --version`
//! costs and about 1 MiB of every run's RSS (measured: docs/benchmarks.md).
//! The code is still compiled position-independent; only the executable's
//! own load address stops being randomised (its libraries, heap and stacks
//! still are).
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
