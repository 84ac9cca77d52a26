//! Jobs of a workload as the end-to-end tests run them: under `agent exec`, claiming to be
//! [`JOB_USER`] (a role that does not exist upstream), with no password anywhere, so that
//! only the agent's credential injection can let them in.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output};

use anyhow::{Context, Result};
use serde_json::Value;

use crate::{AgentProcess, OutputExt};

/// The role jobs claim to be.
pub const JOB_USER: &str = "jobuser";
/// A `PGPASSFILE` that does not exist: no `.pgpass` may help a client.
pub const NO_PGPASS: &str = "/nonexistent/agent-tests-no-pgpass";

/// `args` as a job of `workload` under `agent`, without any libpq connection variable or
/// password in its environment.
pub fn job_command<S: AsRef<OsStr>>(agent: &AgentProcess, workload: &str, args: &[S]) -> Command {
    let mut cmd = agent.exec_command(workload, args);
    for var in [
        "PGPASSWORD",
        "PGUSER",
        "PGHOST",
        "PGPORT",
        "PGDATABASE",
        "PGSERVICE",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("PGPASSFILE", NO_PGPASS)
        .env("PGCONNECT_TIMEOUT", "10");
    cmd
}

/// psql's arguments as [`JOB_USER`] without a password to `host:port`, database `postgres`:
/// no psqlrc, unaligned, tuples only, then `options` (e.g. `-v ON_ERROR_STOP=1`).
pub fn psql_args(psql: &Path, host: &str, port: u16, options: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = vec![
        psql.to_string_lossy().into_owned(),
        "-h".into(),
        host.into(),
        "-p".into(),
        port.to_string(),
        "-U".into(),
        JOB_USER.into(),
        "-d".into(),
        "postgres".into(),
        // Never prompt for a password: the proxy must not ask for one.
        "-w".into(),
        "-X".into(),
        "-A".into(),
        "-t".into(),
    ];
    args.extend(options.iter().map(|o| o.to_string()));
    args
}

/// The one JSON object a client (e.g. `pg-scenarios`) printed on stdout.
pub fn parse_report(out: &Output) -> Result<Value> {
    serde_json::from_str(out.stdout_text().trim()).with_context(|| {
        format!(
            "the client's stdout is not one JSON object: {}",
            out.describe()
        )
    })
}
