//! Builds the Python extension module that `wsgi APP`'s workers load (`_labserv`, the
//! workspace's `crates/pyext`), into its own target directory, then embeds it in the
//! binaries (see `src/wsgi/python/worker.rs`).
//!
//! PyO3's abi3 build needs neither Python headers nor a libpython to link, so this works
//! on a machine without Python; Python is needed only to run the workers.

use std::env;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Set for the nested build, whose build of this library must not build the extension
/// again.
const NESTED: &str = "LABSERV_BUILDING_PYEXT";

fn main() {
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=crates/pyext");
    println!("cargo:rerun-if-changed=Cargo.toml");
    println!("cargo:rerun-if-changed=Cargo.lock");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // The extension's own build (of this library, which it stands on) embeds no
    // extension; only Unix has the workers that
    // load one (on Windows `wsgi APP` says so); and a cross-build (the macOS and MSVC
    // checks from Linux) has no linker for the target's extension: the binary then
    // carries none, and `wsgi APP` says so.
    let unix = env::var_os("CARGO_CFG_UNIX").is_some();
    let cross = env::var("TARGET").ok() != env::var("HOST").ok();
    if env::var_os(NESTED).is_some() || !unix || cross {
        std::fs::write(out.join("labserv_ext.so"), b"").expect("writing OUT_DIR");
        return;
    }
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let release = env::var("PROFILE").is_ok_and(|p| p == "release");
    let macos = env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "macos");
    // OUT_DIR is <target>/<profile>/build/labserv-<hash>/out: the extension gets
    // <target>/pyext, kept between builds so that only what changed is rebuilt.
    let target = out
        .ancestors()
        .nth(4)
        .map_or_else(|| out.join("pyext"), |t| t.join("pyext"));
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["rustc", "--package", "labserv-pyext", "--lib"])
        .env(NESTED, "1")
        .arg("--manifest-path")
        .arg(manifest.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target);
    if release {
        cmd.arg("--release");
    }
    if env::var_os("CARGO_NET_OFFLINE").is_some() {
        cmd.arg("--offline");
    }
    // No debug info (the module is loaded, not debugged) and no lint wrapper from an
    // outer `cargo clippy`: the outer build lints this code already.
    for profile in ["DEV", "RELEASE"] {
        cmd.env(format!("CARGO_PROFILE_{profile}_DEBUG"), "false")
            .env(format!("CARGO_PROFILE_{profile}_STRIP"), "true");
    }
    cmd.env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CLIPPY_ARGS")
        .stdout(Stdio::null());
    if macos {
        // A Python extension on macOS leaves Python's symbols for the interpreter that
        // loads it to provide.
        cmd.args([
            "--",
            "-C",
            "link-arg=-undefined",
            "-C",
            "link-arg=dynamic_lookup",
        ]);
    }
    let status = cmd
        .status()
        .expect("running cargo for the Python extension");
    assert!(status.success(), "building the Python extension failed");
    let built = target
        .join(if release { "release" } else { "debug" })
        .join(if macos {
            "lib_labserv.dylib"
        } else {
            "lib_labserv.so"
        });
    std::fs::copy(&built, out.join("labserv_ext.so")).expect("copying the Python extension");
}
