//! End-to-end tests of the PostgreSQL-aware proxy: credential injection (static and ephemeral),
//! upstream authentication methods and TLS, the protocol features real clients use (simple and
//! extended queries, prepared statements, binary results, COPY, LISTEN/NOTIFY, cancel,
//! pipelining, large results), error reporting, and that the secret never leaks.
//!
//! Each test starts its own PostgreSQL (SCRAM over TCP unless said otherwise, `trust` over the
//! Unix socket for the harness) and its own agent. Every client runs as a job of the workload
//! (`agent exec`), so its connections go through the eBPF interception to the proxy; no client
//! is ever pointed at the proxy's port. Clients connect as `jobuser`, a role that does not exist
//! upstream, without a password: they only get in because the proxy logs in as `chunker` with
//! the secret of the policy.
//!
//! Clients: `psql`, `pgbench`, the tokio-postgres scenario client `pg-scenarios`
//! (`tests/src/bin/pg-scenarios.rs`, which also speaks raw protocol messages) and psycopg 3
//! (`tests/python/psycopg_check.py`). Nothing is skipped.

#![forbid(unsafe_code)]

use agent_tests::audit::JsonPath;
use agent_tests::job::{self, JOB_USER, NO_PGPASS, parse_report};
use agent_tests::pg::quote_literal;
use agent_tests::policy::{CredentialMode, PostgresPolicy, UpstreamTls};
use agent_tests::tls::TestCa;
use agent_tests::{
    AgentOptions, AgentProcess, OutputExt, PgAuth, PgOptions, PgServer, Secret, action_of,
    free_port, loopback_addresses, pg_bin_dir, run_with_timeout, workspace_root,
};
use anyhow::{Context, Result, ensure};
use serde_json::Value;
use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};

const WORKLOAD: &str = "itest-chunker";
const TARGET: &str = "itest-pgdb";
/// The role the proxy logs in as (static credentials).
const UPSTREAM_USER: &str = "chunker";
/// The scenario client (built with the tests).
const SCENARIOS: &str = env!("CARGO_BIN_EXE_pg-scenarios");
/// How long one client run may take.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(90);
/// How long to wait for an expected audit event.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);
/// The prefix of every planted secret.
const SECRET_PREFIX: &str = "S3cr3t-Planted-";

/// How a [`Fixture`] is set up.
struct Setup {
    auth: PgAuth,
    tls: bool,
    /// The upstream role's real password; `None`: the secret (the normal case).
    role_password: Option<String>,
    /// Ephemeral credentials: `jit_admin` creates per-session roles in `orders_reader`.
    ephemeral: bool,
    /// Extra environment for the agent.
    agent_env: Vec<(String, String)>,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            auth: PgAuth::Scram,
            tls: false,
            role_password: None,
            ephemeral: false,
            agent_env: Vec::new(),
        }
    }
}

/// A PostgreSQL server, the secret of its upstream role, and an agent whose policy lets the
/// workload [`WORKLOAD`] reach it as target [`TARGET`] (127.0.0.1 and ::1). The agent is
/// declared first so it stops first.
struct Fixture {
    agent: AgentProcess,
    pg: PgServer,
    secret: Secret,
    /// Every client output seen, for the leak checks.
    outputs: std::cell::RefCell<Vec<Output>>,
}

impl Fixture {
    /// SCRAM upstream, static credentials, TLS disabled.
    fn start() -> Result<Self> {
        Self::start_with(Setup::default(), |_, _| {})
    }

    fn start_with(
        setup: Setup,
        tweak: impl FnOnce(&mut PostgresPolicy, &PgServer),
    ) -> Result<Self> {
        let pg = PgServer::start(PgOptions {
            auth: setup.auth,
            tls: setup.tls,
            ..PgOptions::default()
        })?;
        let secret = Secret::random(SECRET_PREFIX)?;
        let role_password = setup
            .role_password
            .clone()
            .unwrap_or_else(|| secret.value().to_string());
        let mut policy = if setup.ephemeral {
            pg.create_login_role("jit_admin", &role_password)?;
            pg.admin_sql(
                "alter role jit_admin createrole; \
                 create role orders_reader nologin; \
                 grant orders_reader to jit_admin with admin option; \
                 create table orders (id int4 primary key, item text); \
                 insert into orders select g, 'item ' || g from generate_series(1, 3) g; \
                 grant select on orders to orders_reader",
            )?;
            let mut policy = PostgresPolicy::new(
                WORKLOAD,
                TARGET,
                loopback_addresses(pg.port()),
                "jit_admin",
                &secret.path(),
            );
            policy.mode = CredentialMode::Ephemeral {
                group_role: "orders_reader".into(),
                ttl: "15m".into(),
            };
            policy
        } else {
            pg.create_login_role(UPSTREAM_USER, &role_password)?;
            PostgresPolicy::new(
                WORKLOAD,
                TARGET,
                loopback_addresses(pg.port()),
                UPSTREAM_USER,
                &secret.path(),
            )
        };
        tweak(&mut policy, &pg);
        let agent = AgentProcess::start_with(AgentOptions {
            env: setup.agent_env,
            ..AgentOptions::with_policy(&policy.to_toml())
        })?;
        Ok(Self {
            agent,
            pg,
            secret,
            outputs: Default::default(),
        })
    }

    /// `args` as a job of the workload, with no password anywhere in its environment.
    fn job_command<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Command {
        job_command(&self.agent, args)
    }

    /// Runs `args` as a job of the workload; records the output for the leak checks.
    fn run_job<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Result<Output> {
        let out = run_with_timeout(&mut self.job_command(args), CLIENT_TIMEOUT)?;
        self.outputs.borrow_mut().push(out.clone());
        Ok(out)
    }

    /// psql as `jobuser` without a password to `host`, one `-c` per statement.
    fn psql_args(&self, host: &str, statements: &[&str]) -> Vec<String> {
        psql_args(&self.pg.psql_path(), host, self.pg.port(), statements)
    }

    /// Runs psql as a job; returns its output, whatever the outcome.
    fn psql(&self, host: &str, statements: &[&str]) -> Result<Output> {
        self.run_job(&self.psql_args(host, statements))
    }

    /// Runs psql as a job and returns its stdout lines; fails unless psql succeeds.
    fn psql_ok(&self, host: &str, statements: &[&str]) -> Result<Vec<String>> {
        let out = self.psql(host, statements)?;
        ensure!(
            out.status.success(),
            "psql under agent exec failed: {}",
            out.describe()
        );
        Ok(out.stdout_text().lines().map(str::to_string).collect())
    }

    /// Runs `pg-scenarios <host> <port> <scenario> [args]` as a job; returns its output.
    fn scenario(&self, host: &str, scenario: &str, args: &[&str]) -> Result<Output> {
        let mut argv: Vec<String> = vec![
            SCENARIOS.into(),
            host.into(),
            self.pg.port().to_string(),
            scenario.into(),
        ];
        argv.extend(args.iter().map(|a| a.to_string()));
        self.run_job(&argv)
    }

    /// [`Self::scenario`] on 127.0.0.1, which must succeed; returns its JSON report.
    fn scenario_ok(&self, scenario: &str, args: &[&str]) -> Result<Value> {
        let out = self.scenario("127.0.0.1", scenario, args)?;
        ensure!(
            out.status.success(),
            "pg-scenarios {scenario} under agent exec failed: {}",
            out.describe()
        );
        parse_report(&out)
    }

    /// Fails if the secret appears in any client output seen so far (plus `extra`), in the
    /// agent's stderr log or in its audit log.
    fn assert_secret_not_leaked(&self, extra: &[&Output]) {
        assert_secret_absent(
            self.secret.value(),
            &self.agent,
            self.outputs.borrow().iter().chain(extra.iter().copied()),
        );
    }
}

fn job_command<S: AsRef<std::ffi::OsStr>>(agent: &AgentProcess, args: &[S]) -> Command {
    job::job_command(agent, WORKLOAD, args)
}

/// psql as a job to `host`, stopping at the first error, one `-c` per statement.
fn psql_args(psql: &Path, host: &str, port: u16, statements: &[&str]) -> Vec<String> {
    let mut args = job::psql_args(psql, host, port, &["-v", "ON_ERROR_STOP=1"]);
    for statement in statements {
        args.push("-c".into());
        args.push(statement.to_string());
    }
    args
}

fn assert_secret_absent<'a>(
    secret: &str,
    agent: &AgentProcess,
    outputs: impl Iterator<Item = &'a Output>,
) {
    assert!(secret.starts_with(SECRET_PREFIX) && secret.len() > SECRET_PREFIX.len() + 16);
    for (i, out) in outputs.enumerate() {
        for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            assert!(
                !contains(bytes, secret.as_bytes()),
                "the secret appears in the {stream} of client run #{i}: {}",
                out.describe()
            );
        }
    }
    let stderr = std::fs::read(agent.stderr_path()).unwrap_or_default();
    assert!(
        !contains(&stderr, secret.as_bytes()),
        "the secret appears in the agent's stderr log ({})",
        agent.stderr_path().display()
    );
    let audit = std::fs::read(agent.audit_path()).unwrap_or_default();
    assert!(
        !contains(&audit, secret.as_bytes()),
        "the secret appears in the audit log ({})",
        agent.audit_path().display()
    );
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

fn dump(events: &[Value]) -> String {
    events
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Waits for a `connection-closed` event with `event.outcome == "failure"` and a non-empty
/// `error.message`.
fn wait_for_failed_close(agent: &AgentProcess) -> Result<Value> {
    agent.wait_for_event(
        |e| {
            action_of(e) == "connection-closed"
                && e.str_at("event.outcome") == Some("failure")
                && e.str_at("error.message").is_some_and(|m| !m.is_empty())
        },
        EVENT_TIMEOUT,
    )
}

/// The ErrorResponse a raw client received (`error` in a `raw-startup`/`malformed` report),
/// checked to carry the S, V, C and M fields.
fn error_fields(report: &Value) -> &Value {
    let fields = &report["error"]["fields"];
    for field in ["S", "V", "C", "M"] {
        assert!(
            fields[field].as_str().is_some_and(|v| !v.is_empty()),
            "the ErrorResponse lacks the {field} field: {report}"
        );
    }
    fields
}

/// Polls `sql` (via the Unix socket) until it returns `expected`, for up to `timeout`.
fn poll_admin_sql(pg: &PgServer, sql: &str, expected: &str, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let got = pg.admin_sql(sql)?;
        if got == expected {
            return Ok(());
        }
        if Instant::now() >= deadline {
            anyhow::bail!(
                "`{sql}` still returns {got:?} after {timeout:?} (expected {expected:?})"
            );
        }
        thread::sleep(Duration::from_millis(200));
    }
}

// ------------------------------------------------------------------------------------------
// credential injection with real clients
// ------------------------------------------------------------------------------------------

#[test]
fn psql_gets_injected_credentials_without_a_password() -> Result<()> {
    let f = Fixture::start()?;
    for host in ["127.0.0.1", "::1"] {
        let lines = f.psql_ok(
            host,
            &[
                "select current_user",
                "select session_user",
                "select application_name from pg_stat_activity where pid = pg_backend_pid()",
            ],
        )?;
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(lines[0], UPSTREAM_USER, "current_user via {host}");
        assert_eq!(lines[1], UPSTREAM_USER, "session_user via {host}");
        assert!(
            lines[2].contains(WORKLOAD),
            "application_name {:?} does not name the workload {WORKLOAD}",
            lines[2]
        );
    }

    // The proxy logged in with SCRAM as the upstream role.
    let log = f.pg.log_contents();
    assert!(
        log.contains(&format!(
            "connection authenticated: identity=\"{UPSTREAM_USER}\" method=scram-sha-256"
        )),
        "no SCRAM login of {UPSTREAM_USER} in the server log:\n{log}"
    );
    assert!(
        !log.contains(&format!("user={JOB_USER}")),
        "the job's claimed user reached the server:\n{log}"
    );

    let accepted = f.agent.wait_for_event(
        |e| {
            action_of(e) == "connection-accepted"
                && e.str_at("chunk.workload") == Some(WORKLOAD)
                && e.str_at("chunk.target") == Some(TARGET)
        },
        EVENT_TIMEOUT,
    )?;
    assert_eq!(accepted.str_at("process.name"), Some("psql"), "{accepted}");
    let id = accepted
        .str_at("chunk.connection_id")
        .context("no chunk.connection_id")?
        .to_string();
    let closed = f.agent.wait_for_event(
        |e| {
            action_of(e) == "connection-closed"
                && e.str_at("chunk.connection_id") == Some(id.as_str())
        },
        EVENT_TIMEOUT,
    )?;
    assert_ne!(closed.str_at("event.outcome"), Some("failure"), "{closed}");

    // The same psql outside the workload is not intercepted: the server wants a password.
    let direct = run_with_timeout(
        Command::new(f.pg.psql_path())
            .args(&f.psql_args("127.0.0.1", &["select 1"])[1..])
            .env_remove("PGPASSWORD")
            .env("PGPASSFILE", NO_PGPASS),
        CLIENT_TIMEOUT,
    )?;
    assert!(!direct.status.success(), "{}", direct.describe());
    f.assert_secret_not_leaked(&[&direct]);
    Ok(())
}

#[test]
fn ssl_and_gssenc_requests_are_answered_n_then_the_session_works() -> Result<()> {
    let f = Fixture::start()?;
    let report = f.scenario_ok("raw-startup", &["--gssenc-request", "--ssl-request"])?;
    assert_eq!(report["gssenc_response"], "N", "{report}");
    assert_eq!(report["ssl_response"], "N", "{report}");
    assert_eq!(report["ready"], true, "{report}");
    assert_eq!(report["current_user"], UPSTREAM_USER, "{report}");
    // The client is never asked for a password: the only authentication message it sees is
    // AuthenticationOk.
    let auth: Vec<&Value> = report["messages"]
        .as_array()
        .context("messages")?
        .iter()
        .filter(|m| m["type"] == "R")
        .collect();
    assert!(
        auth.iter().all(|m| m["auth"] == 0) && !auth.is_empty(),
        "{report}"
    );
    f.assert_secret_not_leaked(&[]);
    Ok(())
}

#[test]
fn pgbench_simple_extended_and_prepared_run_through_the_proxy() -> Result<()> {
    let f = Fixture::start()?;
    let pgbench = f.pg.bin_dir().join("pgbench");
    // Initialise directly over the Unix socket as the superuser (not intercepted).
    let init = run_with_timeout(
        Command::new(&pgbench)
            .arg("-h")
            .arg(f.pg.socket_dir())
            .args(["-p", &f.pg.port().to_string(), "-U", "postgres"])
            .args(["-i", "-s", "1", "-q", "postgres"]),
        Duration::from_secs(120),
    )?;
    assert!(init.status.success(), "{}", init.describe());
    f.pg.admin_sql(&format!(
        "grant select, insert, update, delete on pgbench_accounts, pgbench_branches, \
         pgbench_tellers, pgbench_history to {UPSTREAM_USER}"
    ))?;

    for mode in ["simple", "extended", "prepared"] {
        let out = f.run_job(&[
            pgbench.to_string_lossy().as_ref(),
            "-h",
            "127.0.0.1",
            "-p",
            &f.pg.port().to_string(),
            "-U",
            JOB_USER,
            "-n",
            "-M",
            mode,
            "-c",
            "2",
            "-j",
            "2",
            "-t",
            "100",
            "postgres",
        ])?;
        assert!(
            out.status.success(),
            "pgbench -M {mode}: {}",
            out.describe()
        );
        let stdout = out.stdout_text();
        assert!(
            stdout.contains("number of transactions actually processed: 200/200"),
            "pgbench -M {mode}: {}",
            out.describe()
        );
        assert!(
            stdout.contains("number of failed transactions: 0 "),
            "pgbench -M {mode}: {}",
            out.describe()
        );
    }
    let history = f.pg.admin_sql("select count(*) from pgbench_history")?;
    assert_eq!(history, "600", "3 runs x 2 clients x 100 transactions");
    let pgbench_events = f
        .agent
        .events_with_action("connection-accepted")
        .into_iter()
        .filter(|e| e.str_at("process.name") == Some("pgbench"))
        .count();
    assert!(pgbench_events >= 6, "{}", dump(&f.agent.audit_events()));
    f.assert_secret_not_leaked(&[]);
    Ok(())
}

// ------------------------------------------------------------------------------------------
// tokio-postgres scenarios (see pg_scenarios_baseline.rs for the same against a plain server)
// ------------------------------------------------------------------------------------------

#[test]
fn tokio_postgres_queries() -> Result<()> {
    let f = Fixture::start()?;
    for host in ["127.0.0.1", "::1"] {
        let out = f.scenario(host, "queries", &[])?;
        assert!(out.status.success(), "{host}: {}", out.describe());
        let q = parse_report(&out)?;
        assert_eq!(
            q["simple_rows"],
            serde_json::json!([["1"], ["two", null], ["3"]]),
            "{q}"
        );
        assert_eq!(q["sum"], 42, "{q}");
        assert_eq!(q["shout"], "hey!", "{q}");
        assert_eq!(q["filtered"], serde_json::json!([3, 4, 5]), "{q}");
        assert_eq!(q["error_sqlstate"], "42703", "{q}");
        assert_eq!(q["after_error"], 5, "{q}");
        assert_eq!(q["current_user"], UPSTREAM_USER, "{q}");
        assert_eq!(q["session_user"], UPSTREAM_USER, "{q}");
        assert!(
            q["application_name"]
                .as_str()
                .is_some_and(|a| a.contains(WORKLOAD)),
            "{q}"
        );
    }
    f.assert_secret_not_leaked(&[]);
    Ok(())
}

#[test]
fn tokio_postgres_transaction() -> Result<()> {
    let f = Fixture::start()?;
    let t = f.scenario_ok("transaction", &[])?;
    assert_eq!(t["inside"], 2, "{t}");
    assert_eq!(t["after_rollback"], 0, "{t}");
    assert_eq!(t["after_commit"], 1, "{t}");
    assert_eq!(t["error_sqlstate"], "22012", "{t}");
    assert_eq!(t["in_failed_sqlstate"], "25P02", "{t}");
    assert_eq!(t["after_error"], 1, "{t}");
    assert_eq!(t["after_simple_rollback"], 1, "{t}");
    Ok(())
}

#[test]
fn tokio_postgres_prepared() -> Result<()> {
    let f = Fixture::start()?;
    let p = f.scenario_ok("prepared", &[])?;
    assert_eq!(p["executions"], 100, "{p}");
    assert_eq!(p["sum"], 9900, "{p}");
    assert_eq!(p["last"], "n99", "{p}");
    assert_eq!(p["params"], 2, "{p}");
    assert_eq!(p["interleaved"], serde_json::json!([42, 42]), "{p}");
    Ok(())
}

#[test]
fn tokio_postgres_binary() -> Result<()> {
    let f = Fixture::start()?;
    let b = f.scenario_ok("binary", &[])?;
    assert_eq!(b["int4"], 42, "{b}");
    assert_eq!(b["int8"], 9_000_000_000i64, "{b}");
    assert_eq!(b["float8"], 3.5, "{b}");
    assert_eq!(b["text"], "héllo wörld", "{b}");
    assert_eq!(b["bytea_hex"], "deadbeef00ff", "{b}");
    assert_eq!(b["bool"], true, "{b}");
    assert_eq!(b["timestamp_micros"], 1_704_164_645_678_000i64, "{b}");
    assert_eq!(b["timestamptz_micros"], 1_704_164_645_678_000i64, "{b}");
    assert_eq!(b["uuid_hex"], "a0eebc999c0b4ef8bb6d6bb9bd380a11", "{b}");
    assert_eq!(b["null_int4"], Value::Null, "{b}");
    assert_eq!(b["int2"], 32767, "{b}");
    assert_eq!(b["float4"], 1.25, "{b}");
    assert_eq!(b["roundtrip_equal"], true, "{b}");
    Ok(())
}

#[test]
fn tokio_postgres_cancel() -> Result<()> {
    let f = Fixture::start()?;
    let c = f.scenario_ok("cancel", &[])?;
    let cancels = c["cancels"].as_array().context("cancels")?;
    assert_eq!(cancels.len(), 2, "{c}");
    for cancel in cancels {
        assert_eq!(cancel["sqlstate"], "57014", "{c}");
        let after = cancel["after_cancel_ms"]
            .as_u64()
            .context("after_cancel_ms")?;
        assert!(after < 5000, "cancelled {after} ms after the request: {c}");
    }
    assert_eq!(c["usable_after"], 11, "{c}");
    // Each cancel arrived on its own intercepted connection.
    let accepted = f.agent.events_with_action("connection-accepted").len();
    assert!(accepted >= 3, "{}", dump(&f.agent.audit_events()));
    Ok(())
}

#[test]
fn cancel_request_keys_are_mapped_and_unknown_keys_are_dropped() -> Result<()> {
    let f = Fixture::start()?;
    let k = f.scenario_ok("cancel-raw", &[])?;
    assert_eq!(
        k["wrong_key_sqlstate"],
        Value::Null,
        "a wrong key cancelled: {k}"
    );
    assert_eq!(
        k["wrong_pid_sqlstate"],
        Value::Null,
        "a wrong pid cancelled: {k}"
    );
    assert_eq!(k["right_key_sqlstate"], "57014", "{k}");
    assert!(
        k["right_key_elapsed_ms"]
            .as_u64()
            .is_some_and(|ms| ms < 5300),
        "{k}"
    );
    assert_eq!(k["usable_after"], "still here", "{k}");

    let u = f.scenario_ok("cancel-unknown", &[])?;
    assert_eq!(u["query_completed"], true, "{u}");
    assert_eq!(
        u["cancel_connection_closed"], true,
        "the proxy kept an unknown CancelRequest's connection open: {u}"
    );
    Ok(())
}

#[test]
fn tokio_postgres_copy() -> Result<()> {
    let f = Fixture::start()?;
    let c = f.scenario_ok("copy", &[])?;
    assert_eq!(c["copied_in"], 10_000, "{c}");
    assert_eq!(c["count"], 10_000, "{c}");
    assert_eq!(c["sum_id"], 49_995_000, "{c}");
    assert_eq!(c["copied_out_lines"], 10_000, "{c}");
    assert_eq!(c["copied_out_bytes"], c["expected_out_bytes"], "{c}");
    assert_eq!(c["bad_copy_sqlstate"], "22P02", "{c}");
    assert_eq!(c["count_after_bad_copy"], 10_000, "{c}");
    Ok(())
}

#[test]
fn tokio_postgres_notify() -> Result<()> {
    let f = Fixture::start()?;
    let n = f.scenario_ok("notify", &[])?;
    assert_eq!(n["channel"], "chunk_events", "{n}");
    assert_eq!(n["payload"], n["expected_payload"], "{n}");
    assert_eq!(n["usable_after"], 12, "{n}");
    Ok(())
}

#[test]
fn tokio_postgres_large() -> Result<()> {
    let f = Fixture::start()?;
    let l = f.scenario_ok("large", &[])?;
    assert_eq!(l["rows"], 1_000_000, "{l}");
    assert_eq!(l["text_bytes"], 40_000_000, "{l}");
    assert_eq!(l["last"], 1_000_000, "{l}");
    assert_eq!(l["in_order"], true, "{l}");
    let closed = f.agent.wait_for_event(
        |e| {
            action_of(e) == "connection-closed"
                && e.u64_at("chunk.bytes.server_to_client").is_some()
        },
        EVENT_TIMEOUT,
    )?;
    let down = closed.u64_at("chunk.bytes.server_to_client").unwrap_or(0);
    assert!(down > 40_000_000, "only {down} bytes counted: {closed}");
    Ok(())
}

#[test]
fn tokio_postgres_pipeline() -> Result<()> {
    let f = Fixture::start()?;
    let p = f.scenario_ok("pipeline", &[])?;
    assert_eq!(p["ok_count"], 49, "{p}");
    let errors = p["errors"].as_array().context("errors")?;
    assert_eq!(errors.len(), 1, "{p}");
    assert_eq!(errors[0]["index"], 25, "{p}");
    assert_eq!(errors[0]["sqlstate"], "22012", "{p}");
    Ok(())
}

// ------------------------------------------------------------------------------------------
// psycopg 3
// ------------------------------------------------------------------------------------------

#[test]
fn psycopg3_server_and_client_side_binding() -> Result<()> {
    let f = Fixture::start()?;
    let script = workspace_root().join("tests/python/psycopg_check.py");
    assert!(script.is_file(), "{} is missing", script.display());
    let probe = run_with_timeout(
        Command::new("python3").args(["-c", "import psycopg"]),
        Duration::from_secs(30),
    )?;
    assert!(
        probe.status.success(),
        "psycopg 3 is not importable by python3: run `cargo xtask setup`\n{}",
        probe.describe()
    );
    let out = f.run_job(&[
        OsString::from("python3"),
        script.into_os_string(),
        "127.0.0.1".into(),
        f.pg.port().to_string().into(),
    ])?;
    assert!(out.status.success(), "{}", out.describe());
    let r = parse_report(&out)?;
    assert_eq!(r["current_user"], UPSTREAM_USER, "{r}");
    assert!(
        r["application_name"]
            .as_str()
            .is_some_and(|a| a.contains(WORKLOAD)),
        "{r}"
    );
    assert_eq!(r["server_side"]["sum"], 42, "{r}");
    assert_eq!(r["server_side"]["text"], "it's", "{r}");
    assert_eq!(r["server_side"]["named"], "xy", "{r}");
    assert_eq!(r["auto_prepared_sum"], 135, "{r}");
    assert_eq!(r["forced_prepare"], 2, "{r}");
    assert_eq!(r["executemany"], serde_json::json!([100, 4950]), "{r}");
    assert_eq!(r["binary"]["int8"], 9_000_000_000i64, "{r}");
    assert_eq!(r["binary"]["bytea_hex"], "0001ff", "{r}");
    assert_eq!(r["fetchall_rows"], 10_000, "{r}");
    assert_eq!(r["client_side_mogrify"], "select 1, 'it''s', NULL", "{r}");
    assert_eq!(
        r["client_side"],
        serde_json::json!({"sum": 2, "text": "it's", "null": null}),
        "{r}"
    );
    assert_eq!(r["client_side_rows"], 10_000, "{r}");
    assert_eq!(r["named_cursor_rows"], 10_000, "{r}");
    assert_eq!(r["named_cursor_bytes"], 400_000, "{r}");
    let pipeline: Vec<i64> = (0..20).map(|i| i * 2).collect();
    assert_eq!(r["pipeline"], serde_json::json!(pipeline), "{r}");
    assert_eq!(r["error_sqlstate"], "22012", "{r}");
    assert_eq!(r["after_error"], 7, "{r}");
    f.assert_secret_not_leaked(&[]);
    Ok(())
}

// ------------------------------------------------------------------------------------------
// upstream authentication methods and failures
// ------------------------------------------------------------------------------------------

#[test]
fn md5_and_cleartext_upstream_auth_work() -> Result<()> {
    for (auth, method) in [(PgAuth::Md5, "md5"), (PgAuth::Password, "password")] {
        let f = Fixture::start_with(
            Setup {
                auth,
                ..Setup::default()
            },
            |_, _| {},
        )?;
        let lines = f.psql_ok("127.0.0.1", &["select current_user"])?;
        assert_eq!(lines, vec![UPSTREAM_USER.to_string()], "{auth:?}");
        let q = f.scenario_ok("queries", &[])?;
        assert_eq!(q["current_user"], UPSTREAM_USER, "{auth:?}: {q}");
        let log = f.pg.log_contents();
        assert!(
            log.contains(&format!(
                "connection authenticated: identity=\"{UPSTREAM_USER}\" method={method}"
            )),
            "{auth:?}: no {method} login of {UPSTREAM_USER} in the server log:\n{log}"
        );
        f.assert_secret_not_leaked(&[]);
    }
    Ok(())
}

#[test]
fn wrong_upstream_password_gives_a_clear_error_and_an_audit_event() -> Result<()> {
    let f = Fixture::start_with(
        Setup {
            role_password: Some("not-the-secret-of-the-policy".into()),
            ..Setup::default()
        },
        |_, _| {},
    )?;
    // tokio-postgres: a FATAL 28P01 that names the target.
    let out = f.scenario("127.0.0.1", "queries", &[])?;
    assert!(!out.status.success(), "{}", out.describe());
    assert!(
        out.stderr_text().contains("(SQLSTATE 28P01)"),
        "{}",
        out.describe()
    );
    let report = parse_report(&out)?;
    assert_eq!(report["sqlstate"], "28P01", "{report}");
    assert_eq!(report["severity"], "FATAL", "{report}");
    assert!(
        report["message"]
            .as_str()
            .is_some_and(|m| m.contains(TARGET)),
        "the error message does not name the target {TARGET}: {report}"
    );

    // Raw: the ErrorResponse has S, V, C, M, and the connection is closed after it.
    let raw = f.scenario_ok("raw-startup", &[])?;
    assert_eq!(raw["ready"], false, "{raw}");
    let fields = error_fields(&raw);
    assert_eq!(fields["C"], "28P01", "{raw}");
    assert_eq!(fields["S"], "FATAL", "{raw}");
    assert!(fields["M"].as_str().unwrap_or("").contains(TARGET), "{raw}");
    assert_eq!(raw["closed"], true, "{raw}");

    // psql shows the message.
    let psql = f.psql("127.0.0.1", &["select 1"])?;
    assert!(!psql.status.success(), "{}", psql.describe());
    assert!(psql.stderr_text().contains(TARGET), "{}", psql.describe());

    f.agent
        .wait_for_event(|e| action_of(e) == "upstream-auth-failed", EVENT_TIMEOUT)?;
    let closed = wait_for_failed_close(&f.agent)?;
    assert_eq!(closed.str_at("chunk.workload"), Some(WORKLOAD), "{closed}");
    f.assert_secret_not_leaked(&[]);
    Ok(())
}

#[test]
fn upstream_down_gives_08001() -> Result<()> {
    let psql = pg_bin_dir()?.join("psql");
    let port = free_port()?;
    let secret = Secret::random(SECRET_PREFIX)?;
    let policy = PostgresPolicy::new(
        WORKLOAD,
        TARGET,
        loopback_addresses(port),
        UPSTREAM_USER,
        &secret.path(),
    );
    let agent = AgentProcess::start(&policy.to_toml())?;

    let started = Instant::now();
    let out = run_with_timeout(
        &mut job_command(
            &agent,
            &[SCENARIOS, "127.0.0.1", &port.to_string(), "queries"],
        ),
        CLIENT_TIMEOUT,
    )?;
    assert!(!out.status.success(), "{}", out.describe());
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    let report = parse_report(&out)?;
    assert_eq!(report["sqlstate"], "08001", "{report}");
    assert_eq!(report["severity"], "FATAL", "{report}");
    assert!(
        report["message"]
            .as_str()
            .is_some_and(|m| m.contains(TARGET)),
        "the error message does not name the target {TARGET}: {report}"
    );

    let raw = run_with_timeout(
        &mut job_command(
            &agent,
            &[SCENARIOS, "::1", &port.to_string(), "raw-startup"],
        ),
        CLIENT_TIMEOUT,
    )?;
    assert!(raw.status.success(), "{}", raw.describe());
    let raw_report = parse_report(&raw)?;
    let fields = error_fields(&raw_report);
    assert_eq!(fields["C"], "08001", "{raw_report}");
    assert_eq!(fields["S"], "FATAL", "{raw_report}");

    let psql_out = run_with_timeout(
        &mut job_command(&agent, &psql_args(&psql, "127.0.0.1", port, &["select 1"])),
        CLIENT_TIMEOUT,
    )?;
    assert!(!psql_out.status.success(), "{}", psql_out.describe());
    assert!(
        psql_out.stderr_text().contains(TARGET),
        "{}",
        psql_out.describe()
    );

    wait_for_failed_close(&agent)?;
    assert_secret_absent(secret.value(), &agent, [&out, &raw, &psql_out].into_iter());
    Ok(())
}

#[test]
fn replication_startup_is_refused() -> Result<()> {
    let f = Fixture::start()?;
    for value in ["database", "true"] {
        let raw = f.scenario_ok("raw-startup", &[&format!("replication={value}")])?;
        assert_eq!(raw["ready"], false, "replication={value}: {raw}");
        let fields = error_fields(&raw);
        assert_eq!(fields["C"], "28000", "replication={value}: {raw}");
        assert_eq!(fields["S"], "FATAL", "replication={value}: {raw}");
    }
    let conninfo = format!(
        "host=127.0.0.1 port={} user={JOB_USER} dbname=postgres replication=database",
        f.pg.port()
    );
    let psql = f.run_job(&[
        f.pg.psql_path().to_string_lossy().as_ref(),
        &conninfo,
        "-w",
        "-X",
        "-c",
        "IDENTIFY_SYSTEM",
    ])?;
    assert!(!psql.status.success(), "{}", psql.describe());
    let log = f.pg.log_contents();
    assert!(
        !log.contains("replication connection authorized"),
        "a replication connection reached the server:\n{log}"
    );
    // Normal sessions still work.
    assert_eq!(
        f.psql_ok("127.0.0.1", &["select current_user"])?,
        vec![UPSTREAM_USER.to_string()]
    );
    Ok(())
}

#[test]
fn forced_database_overrides_the_clients_choice() -> Result<()> {
    let f = Fixture::start_with(Setup::default(), |policy, pg| {
        pg.admin_sql("create database orders_db")
            .expect("create database");
        policy.database = Some("orders_db".into());
    })?;
    let lines = f.psql_ok("127.0.0.1", &["select current_database(), current_user"])?;
    assert_eq!(lines, vec![format!("orders_db|{UPSTREAM_USER}")]);
    Ok(())
}

#[test]
fn malformed_client_message_gets_08p01() -> Result<()> {
    let mut f = Fixture::start()?;
    let m = f.scenario_ok("malformed", &[])?;
    let fields = error_fields(&m);
    assert_eq!(fields["C"], "08P01", "{m}");
    assert_eq!(m["closed"], true, "the connection stayed open: {m}");
    // The agent keeps serving.
    assert!(
        f.agent.is_running(),
        "the agent died:\n{}",
        f.agent.stderr_log()
    );
    assert_eq!(
        f.psql_ok("127.0.0.1", &["select 'still serving'"])?,
        vec!["still serving".to_string()]
    );
    wait_for_failed_close(&f.agent)?;
    Ok(())
}

// ------------------------------------------------------------------------------------------
// ephemeral credentials
// ------------------------------------------------------------------------------------------

#[test]
fn ephemeral_role_is_created_for_the_session_and_dropped_after() -> Result<()> {
    let f = Fixture::start_with(
        Setup {
            ephemeral: true,
            ..Setup::default()
        },
        |_, _| {},
    )?;
    let prefix = format!("jit_{}_", WORKLOAD.replace('-', "_"));
    let mut seen = Vec::new();
    for _ in 0..2 {
        let lines = f.psql_ok(
            "127.0.0.1",
            &[
                "select current_user, pg_has_role(current_user, 'orders_reader', 'member')",
                "select string_agg(rolname, ',' order by rolname) from pg_roles \
                 where rolname like 'jit\\_%'",
                "select count(*) from orders",
                "select rolvaliduntil > now() + interval '10 minutes' \
                 and rolvaliduntil < now() + interval '20 minutes' \
                 from pg_roles where rolname = current_user",
                "select application_name from pg_stat_activity where pid = pg_backend_pid()",
            ],
        )?;
        assert_eq!(lines.len(), 5, "{lines:?}");
        let (user, member) = lines[0]
            .split_once('|')
            .with_context(|| format!("{lines:?}"))?;
        assert!(
            user.starts_with(&prefix) && user.len() > prefix.len(),
            "current_user {user:?} does not start with {prefix}"
        );
        assert!(
            user[prefix.len()..].chars().all(|c| c.is_ascii_hexdigit()),
            "{user:?}"
        );
        assert_eq!(member, "t", "{user} is not a member of orders_reader");
        assert!(
            lines[1].split(',').any(|r| r == user),
            "{user} not in pg_roles during the session: {}",
            lines[1]
        );
        assert_eq!(lines[2], "3", "the session role cannot read orders");
        assert_eq!(lines[3], "t", "VALID UNTIL is not about now + 15m");
        assert!(lines[4].contains(WORKLOAD), "{lines:?}");

        // Gone after the session.
        poll_admin_sql(
            &f.pg,
            &format!(
                "select count(*) from pg_roles where rolname = {}",
                quote_literal(user)
            ),
            "0",
            Duration::from_secs(10),
        )?;
        seen.push(user.to_string());
    }
    assert_ne!(seen[0], seen[1], "two sessions got the same role");
    poll_admin_sql(
        &f.pg,
        &format!(
            "select count(*) from pg_roles where rolname like {}",
            quote_literal(&format!("{}%", prefix.replace('_', "\\_")))
        ),
        "0",
        Duration::from_secs(10),
    )?;
    f.assert_secret_not_leaked(&[]);
    Ok(())
}

#[test]
fn reaper_drops_this_hosts_leftover_roles_and_expired_ones_at_start() -> Result<()> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")?
        .trim()
        .to_string();
    let marker = |host: &str| format!("chunk-agent ephemeral role; host={host}; workload=w");
    let f = Fixture::start_with(
        Setup {
            ephemeral: true,
            ..Setup::default()
        },
        |_, pg| {
            // What a crashed agent on this host, and an expired session elsewhere, left behind;
            // plus a live role of another host and an unrelated role, which must stay.
            let roles = [
                ("jit_w_leftover", marker(&host), "now() + interval '1 hour'"),
                (
                    "jit_w_expired",
                    marker("other-host"),
                    "now() - interval '1 minute'",
                ),
                (
                    "jit_w_other_live",
                    marker("other-host"),
                    "now() + interval '1 hour'",
                ),
                (
                    "jit_w_unrelated",
                    "made by hand".to_string(),
                    "now() - interval '1 minute'",
                ),
            ];
            for (role, comment, until) in roles {
                pg.admin_sql(&format!(
                    "do $$ begin execute format('create role %I login valid until %L', {}, {until}); \
                     end $$; comment on role {role} is {}",
                    quote_literal(role),
                    quote_literal(&comment)
                ))
                .expect("create a leftover role");
            }
        },
    )?;
    for (role, expected) in [
        ("jit_w_leftover", "0"),
        ("jit_w_expired", "0"),
        ("jit_w_other_live", "1"),
        ("jit_w_unrelated", "1"),
    ] {
        poll_admin_sql(
            &f.pg,
            &format!(
                "select count(*) from pg_roles where rolname = {}",
                quote_literal(role)
            ),
            expected,
            Duration::from_secs(10),
        )
        .with_context(|| format!("role {role}"))?;
    }
    let reaped: Vec<String> = f
        .agent
        .audit_events()
        .iter()
        .filter(|e| action_of(e) == "ephemeral-role-reaped")
        .filter_map(|e| e.str_at("user.target.name").map(str::to_string))
        .collect();
    ensure!(
        reaped.contains(&"jit_w_leftover".to_string())
            && reaped.contains(&"jit_w_expired".to_string())
            && reaped.len() == 2,
        "reaped: {reaped:?}"
    );
    Ok(())
}

// ------------------------------------------------------------------------------------------
// upstream TLS
// ------------------------------------------------------------------------------------------

#[test]
fn upstream_tls_verify_full_with_ca_file() -> Result<()> {
    let f = Fixture::start_with(
        Setup {
            tls: true,
            ..Setup::default()
        },
        |policy, pg| {
            policy.tls = UpstreamTls::VerifyFull {
                ca_file: pg.ca_pem_path(),
                server_name: None,
            };
        },
    )?;
    for host in ["127.0.0.1", "::1"] {
        let lines = f.psql_ok(
            host,
            &[
                "select current_user",
                "select ssl from pg_stat_ssl where pid = pg_backend_pid()",
            ],
        )?;
        assert_eq!(
            lines,
            vec![UPSTREAM_USER.to_string(), "t".to_string()],
            "via {host}"
        );
    }
    let q = f.scenario_ok("queries", &[])?;
    assert_eq!(q["current_user"], UPSTREAM_USER, "{q}");
    f.assert_secret_not_leaked(&[]);
    Ok(())
}

/// A TLS server, and a policy whose verification must fail: the job gets an error, the
/// failure is audited, and the upstream role never logs in.
fn check_tls_refused(tweak: impl FnOnce(&mut PostgresPolicy, &PgServer)) -> Result<()> {
    let f = Fixture::start_with(
        Setup {
            tls: true,
            ..Setup::default()
        },
        tweak,
    )?;
    let psql = f.psql("127.0.0.1", &["select current_user"])?;
    assert!(!psql.status.success(), "{}", psql.describe());
    let raw = f.scenario_ok("raw-startup", &[])?;
    assert_eq!(raw["ready"], false, "{raw}");
    let fields = error_fields(&raw);
    assert_eq!(fields["S"], "FATAL", "{raw}");
    assert!(fields["M"].as_str().unwrap_or("").contains(TARGET), "{raw}");
    wait_for_failed_close(&f.agent)?;
    let log = f.pg.log_contents();
    assert!(
        !log.contains(&format!("identity=\"{UPSTREAM_USER}\"")),
        "the upstream role logged in despite a failed verification:\n{log}"
    );
    f.assert_secret_not_leaked(&[]);
    Ok(())
}

#[test]
fn upstream_tls_with_wrong_ca_is_refused() -> Result<()> {
    let other = tempfile::tempdir()?;
    let other_ca = other.path().join("other-ca.pem");
    TestCa::new("some other CA")?.write_cert_pem(&other_ca)?;
    check_tls_refused(|policy, _| {
        policy.tls = UpstreamTls::VerifyFull {
            ca_file: Some(other_ca.clone()),
            server_name: None,
        };
    })
}

#[test]
fn upstream_tls_with_wrong_server_name_is_refused() -> Result<()> {
    check_tls_refused(|policy, pg| {
        policy.tls = UpstreamTls::VerifyFull {
            ca_file: pg.ca_pem_path(),
            server_name: Some("db.example.invalid".into()),
        };
    })
}

// ------------------------------------------------------------------------------------------
// secrets
// ------------------------------------------------------------------------------------------

#[test]
fn secrets_never_reach_the_client_or_the_logs() -> Result<()> {
    let f = Fixture::start_with(
        Setup {
            // As verbose as the agent gets.
            agent_env: vec![("RUST_LOG".into(), "trace".into())],
            ..Setup::default()
        },
        |_, _| {},
    )?;
    assert!(f.secret.value().starts_with(SECRET_PREFIX));

    // Sessions that work...
    assert_eq!(
        f.psql_ok("127.0.0.1", &["select current_user"])?,
        vec![UPSTREAM_USER.to_string()]
    );
    f.scenario_ok("queries", &[])?;
    let ok_raw = f.scenario_ok("raw-startup", &["--ssl-request"])?;
    assert_eq!(ok_raw["ready"], true, "{ok_raw}");
    // ...a session whose SQL fails, and one that prints the settings it can see...
    let failing_sql = f.psql("127.0.0.1", &["select 1/0"])?;
    assert!(!failing_sql.status.success());
    f.psql_ok(
        "::1",
        &["select name, setting from pg_settings", "show all"],
    )?;

    // ...then sessions whose upstream login fails (the role's password changed).
    f.pg.admin_sql(&format!(
        "alter role {UPSTREAM_USER} password 'changed-under-the-agent'"
    ))?;
    let failed = f.psql("127.0.0.1", &["select 1"])?;
    assert!(!failed.status.success(), "{}", failed.describe());
    let failed_raw = f.scenario_ok("raw-startup", &[])?;
    assert_eq!(failed_raw["ready"], false, "{failed_raw}");
    let failed_tp = f.scenario("::1", "queries", &[])?;
    assert!(!failed_tp.status.success(), "{}", failed_tp.describe());
    f.agent
        .wait_for_event(|e| action_of(e) == "upstream-auth-failed", EVENT_TIMEOUT)?;

    assert!(
        f.outputs.borrow().len() >= 8,
        "not every client run was recorded"
    );
    assert!(
        f.agent.stderr_log().contains("DEBUG"),
        "RUST_LOG=trace did not make the agent log verbosely"
    );
    f.assert_secret_not_leaked(&[]);
    Ok(())
}
