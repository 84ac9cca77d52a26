//! `cargo xtask setup`: install the build and test prerequisites. Idempotent: each step checks
//! first and only acts when something is missing, saying what it does.

use crate::util::{cargo, output_of, run_cmd, section, succeeds};
use anyhow::{Context, Result, bail};
use std::process::Command;

/// Debian packages the workspace needs.
const APT_PACKAGES: &[(&str, &str)] = &[
    (
        "llvm-22-dev",
        "bpf-linker links eBPF code with LLVM 22 (rustc's LLVM major)",
    ),
    ("libclang1-14", "bindgen (pg_query) needs libclang"),
    (
        "libclang-common-14-dev",
        "bindgen (pg_query) needs clang's headers (stdbool.h)",
    ),
    (
        "postgresql",
        "throwaway PostgreSQL servers for the demo and the tests",
    ),
    (
        "postgresql-contrib",
        "PostgreSQL extensions for the test servers",
    ),
    (
        "postgresql-client",
        "psql, the demo's and the tests' unmodified client",
    ),
    ("pgbouncer", "a pooler to test the proxy against (planned)"),
    ("python3", "small socket clients in the tests"),
    ("procps", "`kill`, used to stop the agent with SIGTERM"),
];

/// The LLVM that bpf-linker is built against (must match rustc's LLVM major).
const LLVM_MAJOR: &str = "22";

pub fn run() -> Result<()> {
    section("setup: prerequisites");
    check_root()?;
    check_cgroup2()?;
    apt_packages()?;
    psycopg()?;
    rust_toolchains()?;
    bpf_linker()?;
    bpffs()?;
    println!("setup: done");
    Ok(())
}

fn check_root() -> Result<()> {
    let status = std::fs::read_to_string("/proc/self/status").context("cannot read /proc")?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("?");
    if uid != "0" {
        bail!(
            "must run as root (effective uid is {uid}): the agent loads eBPF programs and \
             manages cgroups, and setup installs packages"
        );
    }
    println!("ok: running as root");
    Ok(())
}

fn check_cgroup2() -> Result<()> {
    let mount = agent_tests::cgroup2_mount().context(
        "the cgroup v2 hierarchy is not mounted: the agent needs it (pure v2, or hybrid \
         mode with /sys/fs/cgroup/unified)",
    )?;
    println!("ok: cgroup v2 mounted at {}", mount.display());
    if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
        println!("warning: /sys/kernel/btf/vmlinux is missing: the kernel may lack BTF");
    }
    Ok(())
}

fn package_installed(package: &str) -> bool {
    output_of(Command::new("dpkg-query").args(["-W", "-f=${db:Status-Status}", package]))
        .is_some_and(|status| status.trim() == "installed")
}

fn apt_packages() -> Result<()> {
    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .filter(|(package, _)| !package_installed(package))
        .map(|(package, _)| *package)
        .collect();
    if missing.is_empty() {
        println!(
            "ok: apt packages installed: {}",
            APT_PACKAGES
                .iter()
                .map(|(p, _)| *p)
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Ok(());
    }
    for (package, why) in APT_PACKAGES.iter().filter(|(p, _)| missing.contains(p)) {
        println!("installing {package}: {why}");
    }
    run_cmd(
        Command::new("apt-get")
            .arg("update")
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    run_cmd(
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    Ok(())
}

/// psycopg 3 (with its bundled libpq) for the `python3` on `PATH`: the end-to-end tests run
/// `tests/python/psycopg_check.py` with it. Installed with pip (Debian's `python3-psycopg` would
/// only serve Debian's own python3, and is older).
fn psycopg() -> Result<()> {
    let import_check = || succeeds(Command::new("python3").args(["-c", "import psycopg"]));
    if import_check() {
        let version = output_of(
            Command::new("python3").args(["-c", "import psycopg; print(psycopg.__version__)"]),
        )
        .unwrap_or_default();
        println!("ok: psycopg {} importable by python3", version.trim());
        return Ok(());
    }
    if !succeeds(Command::new("python3").args(["-m", "pip", "--version"])) {
        println!("installing python3-pip: pip installs psycopg");
        run_cmd(
            Command::new("apt-get")
                .arg("update")
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )?;
        run_cmd(
            Command::new("apt-get")
                .args(["install", "-y", "--no-install-recommends", "python3-pip"])
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )?;
    }
    println!("installing psycopg 3 (psycopg[binary]) for python3: the tests' Python client");
    run_cmd(
        Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "psycopg[binary]",
            ])
            // Debian's python3 is "externally managed" (PEP 668); this python only serves
            // throwaway test clients, and root's pip warning is noise.
            .env("PIP_BREAK_SYSTEM_PACKAGES", "1")
            .env("PIP_ROOT_USER_ACTION", "ignore"),
    )?;
    if !import_check() {
        bail!("psycopg was installed but `python3 -c \"import psycopg\"` still fails");
    }
    println!("ok: psycopg importable by python3");
    Ok(())
}

fn rust_toolchains() -> Result<()> {
    // rustfmt and clippy for the toolchain that runs us (`cargo xtask test` uses them).
    for (component, probe) in [("rustfmt", "fmt"), ("clippy", "clippy")] {
        if succeeds(cargo().args([probe, "--version"])) {
            println!("ok: cargo {probe} available");
        } else {
            println!("installing the {component} component");
            run_cmd(Command::new("rustup").args(["component", "add", component]))?;
        }
    }

    // The eBPF crate is built with nightly's -Z build-std=core, which needs rust-src.
    let toolchains = output_of(Command::new("rustup").args(["toolchain", "list"]))
        .context("`rustup toolchain list` failed: is rustup installed?")?;
    if toolchains.lines().any(|l| l.starts_with("nightly")) {
        println!("ok: nightly toolchain installed");
    } else {
        println!("installing the nightly toolchain (the eBPF crate is built with it)");
        run_cmd(Command::new("rustup").args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
        ]))?;
    }
    let components = output_of(Command::new("rustup").args([
        "component",
        "list",
        "--installed",
        "--toolchain",
        "nightly",
    ]))
    .unwrap_or_default();
    if components.lines().any(|l| l.starts_with("rust-src")) {
        println!("ok: rust-src installed for nightly");
    } else {
        println!("installing rust-src for nightly (needed by -Z build-std=core)");
        run_cmd(Command::new("rustup").args([
            "component",
            "add",
            "rust-src",
            "--toolchain",
            "nightly",
        ]))?;
    }
    Ok(())
}

fn bpf_linker() -> Result<()> {
    if let Some(version) = output_of(Command::new("bpf-linker").arg("--version")) {
        println!("ok: {} installed", version.trim());
        return Ok(());
    }
    let prefix = format!("/usr/lib/llvm-{LLVM_MAJOR}");
    println!(
        "installing bpf-linker against {prefix} (a plain `cargo install bpf-linker` would pick \
         Debian's default LLVM and fail)"
    );
    run_cmd(
        cargo()
            .args([
                "install",
                "bpf-linker",
                "--locked",
                "--no-default-features",
                "--features",
            ])
            .arg(format!("llvm-{LLVM_MAJOR}"))
            .env("LLVM_PREFIX", &prefix),
    )?;
    Ok(())
}

fn bpffs() -> Result<()> {
    let mountinfo =
        std::fs::read_to_string("/proc/self/mountinfo").context("cannot read mountinfo")?;
    let mounted = mountinfo.lines().any(|line| {
        line.split_once(" - ").is_some_and(|(before, after)| {
            after.split_whitespace().next() == Some("bpf")
                && before.split_whitespace().nth(4) == Some("/sys/fs/bpf")
        })
    });
    if mounted {
        println!("ok: bpffs mounted at /sys/fs/bpf");
        return Ok(());
    }
    println!("mounting bpffs at /sys/fs/bpf (for pinned maps and links)");
    std::fs::create_dir_all("/sys/fs/bpf").ok();
    run_cmd(Command::new("mount").args(["-t", "bpf", "bpf", "/sys/fs/bpf"]))
}
