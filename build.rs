//! How the `redlab` binary is linked on GNU/Linux.
//!
//! 1. Position-dependent (`-no-pie`). A PIE of this size carries ~100k
//!    relative relocations that the dynamic loader applies at every start:
//!    it reads the relocation table and dirties every page of
//!    .data.rel.ro, which is most of what `redlab --version` costs and
//!    about 1 MiB of every run's RSS (measured: docs/benchmarks.md). The
//!    code is still compiled position-independent; only the executable's
//!    own load address stops being randomised (its libraries, heap and
//!    stacks still are).
//! 2. The code that runs, packed together (`link/hot-symbols.txt`, written
//!    by `bench/hot_symbols.py`). The kernel maps file pages 64 KiB at a
//!    time around each fault ("fault-around"), so the ~1.5 MiB of functions
//!    a perf run executes, scattered over 10.5 MiB of text (dist), cost
//!    7.6 MiB of RSS and ~120 faults at every start; packed, 1.7 MiB. lld's
//!    `--symbol-ordering-file` puts them first, next to each other. Only
//!    where the linker is rust-lld (Rust's default on x86_64 Linux since
//!    1.90) and nobody chose another one; `REDLAB_LINK_ORDER=0` turns it
//!    off. An entry the build does not have is skipped, never an error.
use std::env;
use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=link/hot-symbols.txt");
    println!("cargo:rerun-if-env-changed=REDLAB_LINK_ORDER");
    // glibc Linux only: a musl build (the Dockerfile's) is a static PIE,
    // which `-no-pie` would contradict.
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux")
        || env::var("CARGO_CFG_TARGET_ENV").as_deref() != Ok("gnu")
    {
        return;
    }
    println!("cargo:rustc-link-arg-bins=-no-pie");
    let order = Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap()).join("link/hot-symbols.txt");
    if order.exists()
        && env::var("REDLAB_LINK_ORDER").as_deref() != Ok("0")
        && links_with_rust_lld()
    {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}

/// Whether rustc links this target with its own lld: x86_64 GNU/Linux,
/// rustc 1.90 or later with rust-lld in its sysroot, and no flag choosing
/// another linker (GNU ld has no `--symbol-ordering-file`).
fn links_with_rust_lld() -> bool {
    if env::var("TARGET").as_deref() != Ok("x86_64-unknown-linux-gnu") {
        return false;
    }
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let chooses_linker = flags.split('\x1f').any(|f| {
        (f.contains("fuse-ld=") && !f.contains("fuse-ld=lld"))
            || f.contains("link-self-contained")
            || f.contains("linker-features")
            || f.contains("linker-flavor")
    });
    if chooses_linker {
        return false;
    }
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let minor = Command::new(&rustc)
        .arg("-V")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|v| {
            v.split_whitespace()
                .nth(1)?
                .split('.')
                .nth(1)?
                .parse::<u32>()
                .ok()
        });
    if minor.is_none_or(|m| m < 90) {
        return false;
    }
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok());
    sysroot.is_some_and(|s| {
        Path::new(s.trim())
            .join("lib/rustlib/x86_64-unknown-linux-gnu/bin/gcc-ld/ld.lld")
            .exists()
    })
}
