//! End-to-end tests of SQL access-policy enforcement by the PostgreSQL-aware proxy
//! (`[[workload.access]]`, see docs/policy-reference.md).
//!
//! Each test starts its own PostgreSQL (SCRAM over TCP, `trust` over the Unix socket for the
//! harness) and its own agent. Every client runs as a job of the workload (`agent exec`), so
//! its connections go through the eBPF interception to the proxy; no client is ever pointed
//! at the proxy's port. Clients connect as `jobuser` (a role that does not exist upstream)
//! without a password; the proxy logs in as `chunker`.
//!
//! `chunker` is a **superuser** upstream: the database itself would let it do everything, so
//! every refusal seen here is the agent's policy (some tests run the same statement directly as
//! `chunker`, over the Unix socket, to show that the server would have run it).
//!
//! The schema: `public.t (id, v)` with ids 1 to 5, an empty `staging.x (id, v)` and
//! `public.audit_log (id, note)` with one row. The policy ([`ACCESS`]) lets the workload read
//! `public.*` and `staging.*` (and the catalogs), write `staging.*`, denies the audit tables and
//! makes bulk writes on `staging.*` wait for an approval.

#![forbid(unsafe_code)]

use agent_tests::audit::JsonPath;
use agent_tests::job::{self, JOB_USER};
use agent_tests::policy::PostgresPolicy;
use agent_tests::{
    AgentOptions, AgentProcess, OutputExt, PgAuth, PgOptions, PgServer, Secret, action_of,
    loopback_addresses, run_with_timeout,
};
use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};

const WORKLOAD: &str = "policy-job";
const TARGET: &str = "policy-db";
/// The role the proxy logs in as (static credentials); a superuser upstream.
const UPSTREAM_USER: &str = "chunker";
/// The scenario client (built with the tests).
const SCENARIOS: &str = env!("CARGO_BIN_EXE_pg-scenarios");
/// How long one client run may take.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(90);
/// How long to wait for expected audit events.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// The access table of the workload for the target (after its `target = ...` line). One rule
/// per line: the tests find a rule's line by its name.
const ACCESS: &str = r#"search_path = ["public"]
allow = [
    { name = "catalogs", operations = ["read"], tables = ["pg_catalog.*", "information_schema.*"] },
    { name = "read-app", operations = ["read"], tables = ["public.*", "staging.*"] },
    { name = "write-staging", operations = ["write"], tables = ["staging.*"] },
]
deny = [
    { name = "no-audit", operations = ["read", "write"], tables = ["*.audit_*"], reason = "audit tables belong to the application" },
]
approve = [
    { name = "bulk-staging", operations = ["bulk_write"], tables = ["staging.*"] },
]"#;

/// The schema and data every test starts with (run as the superuser), and the upstream role's
/// broad privileges.
const SCHEMA: &str = "alter role chunker superuser; \
     create schema staging; \
     create table public.t (id int4 primary key, v text not null); \
     insert into public.t select g, 'v' || g from generate_series(1, 5) g; \
     create table staging.x (id int4, v text); \
     create table public.audit_log (id int4, note text); \
     insert into public.audit_log values (1, 'who did what')";

/// What `public.t` holds when nothing changed it: `count|sum(id)|string_agg(v)`.
const T_INTACT: &str = "5|15|v1,v2,v3,v4,v5";
const T_STATE: &str = "select count(*), sum(id), string_agg(v, ',' order by id) from public.t";

/// A PostgreSQL server with [`SCHEMA`], the secret of `chunker`, and an agent whose policy lets
/// the workload [`WORKLOAD`] reach it as target [`TARGET`] with an access table. The agent is
/// declared first so it stops first.
struct Fixture {
    agent: AgentProcess,
    pg: PgServer,
    secret: Secret,
    /// Scripts and marker files.
    dir: tempfile::TempDir,
}

impl Fixture {
    /// [`ACCESS`].
    fn start() -> Result<Self> {
        Self::start_with(ACCESS)
    }

    /// `access`: the body of the `[[workload.access]]` table.
    fn start_with(access: &str) -> Result<Self> {
        let pg = PgServer::start(PgOptions {
            auth: PgAuth::Scram,
            ..PgOptions::default()
        })?;
        let secret = Secret::random("S3cr3t-Policy-")?;
        pg.create_login_role(UPSTREAM_USER, secret.value())?;
        pg.admin_sql(SCHEMA)?;
        let agent = start_agent(&pg, &secret, access)?;
        let dir = tempfile::Builder::new()
            .prefix("agent-tests-policy-")
            .tempdir()?;
        Ok(Self {
            agent,
            pg,
            secret,
            dir,
        })
    }

    /// Replaces the agent by one whose access table is `access`.
    fn restart_agent(&mut self, access: &str) -> Result<()> {
        self.agent = start_agent(&self.pg, &self.secret, access)?;
        Ok(())
    }

    /// `args` as a job of the workload, with no password anywhere in its environment.
    fn job_command<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Command {
        job::job_command(&self.agent, WORKLOAD, args)
    }

    fn run_job<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Result<Output> {
        run_with_timeout(&mut self.job_command(args), CLIENT_TIMEOUT)
    }

    /// psql's options as `jobuser` without a password to 127.0.0.1: quiet, unaligned, tuples
    /// only, errors with their SQLSTATE (`VERBOSITY=verbose`), not stopping at errors.
    fn psql_base(&self) -> Vec<String> {
        job::psql_args(
            &self.pg.psql_path(),
            "127.0.0.1",
            self.pg.port(),
            &["-q", "-v", "VERBOSITY=verbose"],
        )
    }

    /// psql as a job, one session, one `-c` (one Query message) per entry of `commands`.
    fn psql(&self, commands: &[&str]) -> Result<Output> {
        let mut args = self.psql_base();
        for command in commands {
            args.push("-c".into());
            args.push(command.to_string());
        }
        self.run_job(&args)
    }

    /// psql as a job running `script` as a file (`-f`: each statement its own Query message).
    fn psql_script(&self, script: &str) -> Result<Output> {
        let path = self
            .dir
            .path()
            .join(agent_tests::unique_name("script") + ".sql");
        std::fs::write(&path, script)?;
        let mut args = self.psql_base();
        args.push("-f".into());
        args.push(path.to_string_lossy().into_owned());
        self.run_job(&args)
    }

    /// Runs `sql` directly as `chunker` over the Unix socket (no agent involved).
    fn chunker_sql(&self, sql: &str) -> Result<Output> {
        run_with_timeout(
            Command::new(self.pg.psql_path())
                .arg("-h")
                .arg(self.pg.socket_dir())
                .args(["-p", &self.pg.port().to_string(), "-U", UPSTREAM_USER])
                .args([
                    "-d",
                    "postgres",
                    "-X",
                    "-q",
                    "-A",
                    "-t",
                    "-v",
                    "ON_ERROR_STOP=1",
                ])
                .args(["-c", sql]),
            CLIENT_TIMEOUT,
        )
    }

    /// Runs `pg-scenarios 127.0.0.1 <port> <scenario>` as a job; it must succeed. Returns its
    /// JSON report.
    fn scenario_ok(&self, scenario: &str) -> Result<Value> {
        let out = self.run_job(&[
            SCENARIOS,
            "127.0.0.1",
            &self.pg.port().to_string(),
            scenario,
        ])?;
        ensure!(
            out.status.success(),
            "pg-scenarios {scenario} under agent exec failed: {}",
            out.describe()
        );
        serde_json::from_str(out.stdout_text().trim()).with_context(|| {
            format!(
                "the client's stdout is not one JSON object: {}",
                out.describe()
            )
        })
    }

    /// The state of `public.t`, read as the superuser.
    fn t_state(&self) -> Result<String> {
        self.pg.admin_sql(T_STATE)
    }

    fn assert_t_intact(&self, context: &str) {
        assert_eq!(
            self.t_state().expect("read public.t"),
            T_INTACT,
            "public.t changed: {context}"
        );
    }

    /// The line of the policy file where the rule `name` is written.
    fn rule_line(&self, name: &str) -> usize {
        let toml = std::fs::read_to_string(self.agent.policy_dir().join("policy.toml"))
            .expect("read the policy file");
        toml.lines()
            .position(|line| line.contains(&format!("name = \"{name}\"")))
            .map(|i| i + 1)
            .unwrap_or_else(|| panic!("no rule {name} in the policy:\n{toml}"))
    }

    /// `<policy dir>/policy.toml:<line>`: where rule `name` is written, as denials cite it.
    fn rule_source(&self, name: &str) -> String {
        format!(
            "{}:{}",
            self.agent.policy_dir().join("policy.toml").display(),
            self.rule_line(name)
        )
    }

    /// Where denials by `rule` say it is written: the rule's line for a rule of the policy,
    /// the `[[workload.access]]` table's line for `default-deny`, nothing for built-in rules.
    fn source_of(&self, rule: &str) -> Option<String> {
        if rule.starts_with("builtin:") {
            return None;
        }
        if rule != "default-deny" {
            return Some(self.rule_source(rule));
        }
        let path = self.agent.policy_dir().join("policy.toml");
        let toml = std::fs::read_to_string(&path).expect("read the policy file");
        let line = toml
            .lines()
            .position(|line| line.trim() == "[[workload.access]]")
            .map(|i| i + 1)
            .unwrap_or_else(|| panic!("no [[workload.access]] in the policy:\n{toml}"));
        Some(format!("{}:{line}", path.display()))
    }

    /// [`assert_denial`] with the place `rule` is written ([`Self::source_of`]).
    fn assert_denied(&self, error: &PsqlError, rule: &str) {
        assert_denial(error, rule, self.source_of(rule).as_deref());
    }

    /// The statement-decision events (`statement-*`) so far.
    fn decisions(&self) -> Vec<Value> {
        self.agent
            .audit_events()
            .into_iter()
            .filter(|e| action_of(e).starts_with("statement-"))
            .collect()
    }

    /// Waits until at least `n` audit events satisfy `pred`; returns them all.
    fn wait_for_events(&self, n: usize, pred: impl Fn(&Value) -> bool) -> Result<Vec<Value>> {
        let deadline = Instant::now() + EVENT_TIMEOUT;
        loop {
            let found: Vec<Value> = self
                .agent
                .audit_events()
                .into_iter()
                .filter(|e| pred(e))
                .collect();
            if found.len() >= n {
                return Ok(found);
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} matching audit events after {EVENT_TIMEOUT:?}, expected {n}; events:\n{}",
                    found.len(),
                    dump(&self.agent.audit_events())
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

fn start_agent(pg: &PgServer, secret: &Secret, access: &str) -> Result<AgentProcess> {
    let mut policy = PostgresPolicy::new(
        WORKLOAD,
        TARGET,
        loopback_addresses(pg.port()),
        UPSTREAM_USER,
        &secret.path(),
    );
    policy.access = Some(access.to_string());
    AgentProcess::start_with(AgentOptions::with_policy(&policy.to_toml()))
}

fn dump(events: &[Value]) -> String {
    events
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// A psql error as printed with `VERBOSITY=verbose`: the lines from `ERROR:` up to the next
/// `ERROR:` (or the end).
#[derive(Debug, Clone)]
struct PsqlError {
    sqlstate: String,
    message: String,
    detail: Option<String>,
    hint: Option<String>,
    /// Every line of the error.
    text: String,
}

/// The errors psql printed on stderr, in order.
fn psql_errors(out: &Output) -> Vec<PsqlError> {
    let stderr = out.stderr_text();
    let mut errors: Vec<PsqlError> = Vec::new();
    for line in stderr.lines() {
        // With -f, psql prefixes "psql:FILE:LINE: ".
        let body = match line.find("ERROR:  ") {
            Some(i) if line[..i].is_empty() || line[..i].starts_with("psql:") => &line[i..],
            _ => line,
        };
        if let Some(rest) = body.strip_prefix("ERROR:  ") {
            let (sqlstate, message) = rest.split_once(": ").unwrap_or(("", rest));
            errors.push(PsqlError {
                sqlstate: sqlstate.to_string(),
                message: message.to_string(),
                detail: None,
                hint: None,
                text: line.to_string(),
            });
            continue;
        }
        let Some(current) = errors.last_mut() else {
            continue;
        };
        current.text.push('\n');
        current.text.push_str(line);
        if let Some(detail) = line.strip_prefix("DETAIL:  ") {
            current.detail = Some(detail.to_string());
        } else if let Some(hint) = line.strip_prefix("HINT:  ") {
            current.hint = Some(hint.to_string());
        }
    }
    errors
}

/// Checks that `error` is a policy denial: 42501, the policy's message, a detail naming
/// `rule` (with `source`, `file:line`, when given), a hint, and none of the fields that would
/// describe the agent's `DO` block.
fn assert_denial(error: &PsqlError, rule: &str, source: Option<&str>) {
    assert_eq!(error.sqlstate, "42501", "{}", error.text);
    assert!(
        error.message.starts_with("permission denied by policy: "),
        "{}",
        error.text
    );
    let detail = error.detail.as_deref().unwrap_or("");
    let expected = match source {
        Some(source) => format!("Denied by rule {rule} ({source})."),
        None => format!("Denied by rule {rule}."),
    };
    assert!(
        detail.starts_with(&expected),
        "DETAIL {detail:?} does not start with {expected:?}:\n{}",
        error.text
    );
    assert!(
        error.hint.as_deref().is_some_and(|h| !h.trim().is_empty()),
        "no HINT: {}",
        error.text
    );
    for stripped in ["CONTEXT:", "LOCATION:", "PL/pgSQL", "chunk_agent", "RAISE"] {
        assert!(
            !error.text.contains(stripped),
            "the denial shows {stripped:?} (the DO block's fields must be stripped):\n{}",
            error.text
        );
    }
}

/// The one error of a psql run (fails unless there is exactly one).
fn single_error(out: &Output) -> PsqlError {
    let errors = psql_errors(out);
    assert_eq!(
        errors.len(),
        1,
        "expected exactly one error: {}",
        out.describe()
    );
    errors.into_iter().next().unwrap_or_else(|| unreachable!())
}

fn stdout_lines(out: &Output) -> Vec<String> {
    out.stdout_text().lines().map(str::to_string).collect()
}

// ------------------------------------------------------------------------------------------
// psql: allowed and denied statements, the error the job sees
// ------------------------------------------------------------------------------------------

#[test]
fn psql_allowed_read_works_and_denied_write_gets_42501_with_rule_and_hint() -> Result<()> {
    let f = Fixture::start()?;

    // Allowed: reads of public.*, a write to staging.*.
    let out = f.psql(&[
        "select string_agg(v, ',' order by id) from public.t",
        "select count(*) from t where id > 2",
        "insert into staging.x values (1, 'staged')",
        "select id || ':' || v from staging.x",
    ])?;
    assert!(out.status.success(), "{}", out.describe());
    assert!(psql_errors(&out).is_empty(), "{}", out.describe());
    assert_eq!(
        stdout_lines(&out),
        ["v1,v2,v3,v4,v5", "3", "1:staged"],
        "{}",
        out.describe()
    );

    // Denied: a write to public.t (no allow rule: default-deny).
    let out = f.psql(&["delete from public.t where id = 5"])?;
    assert!(!out.status.success(), "{}", out.describe());
    let error = single_error(&out);
    f.assert_denied(&error, "default-deny");
    assert!(
        error.message.contains("public.t"),
        "the message does not name the table: {}",
        error.text
    );
    assert!(out.stdout_text().trim().is_empty(), "{}", out.describe());
    f.assert_t_intact("after a denied DELETE");

    // Denied by a deny rule: the detail says which one and where it is written, the message
    // gives the rule's reason.
    let out = f.psql(&["update public.audit_log set note = 'rewritten' where id = 1"])?;
    let error = single_error(&out);
    f.assert_denied(&error, "no-audit");
    assert!(
        error
            .message
            .contains("audit tables belong to the application"),
        "{}",
        error.text
    );
    assert_eq!(
        f.pg.admin_sql("select note from public.audit_log")?,
        "who did what"
    );

    // psql's FETCH_COUNT reads through a cursor (BEGIN; DECLARE ... CURSOR FOR ...; FETCH):
    // allowed on public.t, denied on the audit table.
    let mut args = f.psql_base();
    args.extend(
        [
            "-v",
            "FETCH_COUNT=2",
            "-c",
            "select v from public.t order by id",
        ]
        .map(String::from),
    );
    args.extend(["-c", "select note from public.audit_log"].map(String::from));
    let out = f.run_job(&args)?;
    assert_eq!(
        stdout_lines(&out),
        ["v1", "v2", "v3", "v4", "v5"],
        "{}",
        out.describe()
    );
    f.assert_denied(&single_error(&out), "no-audit");

    // The denial is the agent's: the server lets chunker run the very same statements.
    let direct = f.chunker_sql(
        "delete from public.t where id = 5; \
         update public.audit_log set note = 'rewritten' where id = 1",
    )?;
    assert!(direct.status.success(), "{}", direct.describe());
    assert_eq!(f.t_state()?, "4|10|v1,v2,v3,v4");
    assert_eq!(
        f.pg.admin_sql("select note from public.audit_log")?,
        "rewritten"
    );
    Ok(())
}

#[test]
fn multi_statement_with_a_denied_tail_runs_nothing() -> Result<()> {
    let f = Fixture::start()?;
    // One -c: one Query message holding both statements.
    let out = f.psql(&["insert into staging.x values (1, 'head'); delete from public.t"])?;
    assert!(!out.status.success(), "{}", out.describe());
    let error = single_error(&out);
    f.assert_denied(&error, "default-deny");
    let detail = error.detail.clone().unwrap_or_default();
    assert!(
        detail.contains("Statement 2 of 2 is denied, so none of them was run."),
        "{}",
        error.text
    );
    assert_eq!(f.pg.admin_sql("select count(*) from staging.x")?, "0");
    f.assert_t_intact("after a denied multi-statement message");

    // A denied head: the same.
    let out =
        f.psql(&["delete from public.t where id = 1; insert into staging.x values (2, 'tail')"])?;
    let error = single_error(&out);
    assert!(
        error
            .detail
            .as_deref()
            .unwrap_or("")
            .contains("Statement 1 of 2 is denied"),
        "{}",
        error.text
    );
    assert_eq!(f.pg.admin_sql("select count(*) from staging.x")?, "0");
    f.assert_t_intact("after a denied multi-statement message");

    // Allowed as a whole: both run.
    let out =
        f.psql(&["insert into staging.x values (3, 'a'); insert into staging.x values (4, 'b')"])?;
    assert!(out.status.success(), "{}", out.describe());
    assert_eq!(f.pg.admin_sql("select count(*) from staging.x")?, "2");
    Ok(())
}

#[test]
fn denied_statement_in_a_transaction_aborts_it_like_postgres() -> Result<()> {
    let f = Fixture::start()?;
    let out = f.psql_script(
        "begin;\n\
         insert into staging.x values (1, 'in-tx');\n\
         delete from public.t where id = 1;\n\
         select 'after-denial';\n\
         rollback;\n\
         select 'rows:' || count(*) from staging.x;\n\
         begin;\n\
         insert into staging.x values (2, 'kept');\n\
         savepoint s;\n\
         drop table public.t;\n\
         rollback to savepoint s;\n\
         insert into staging.x values (3, 'kept too');\n\
         commit;\n\
         select 'usable:' || string_agg(id::text, ',' order by id) from staging.x;\n",
    )?;
    let errors = psql_errors(&out);
    assert_eq!(errors.len(), 3, "{}", out.describe());
    assert!(errors[0].text.contains(".sql:3: "), "{}", out.describe());
    f.assert_denied(&errors[0], "default-deny");
    // The transaction is aborted, as after any error of the server.
    assert!(errors[1].text.contains(".sql:4: "), "{}", out.describe());
    assert_eq!(errors[1].sqlstate, "25P02", "{}", out.describe());
    assert!(
        errors[1].message.contains("current transaction is aborted"),
        "{}",
        out.describe()
    );
    // A denial after a savepoint: rolling back to it recovers, the transaction commits.
    assert!(errors[2].text.contains(".sql:10: "), "{}", out.describe());
    f.assert_denied(&errors[2], "default-deny");
    assert_eq!(
        stdout_lines(&out),
        ["rows:0", "usable:2,3"],
        "{}",
        out.describe()
    );
    assert_eq!(
        f.pg.admin_sql("select string_agg(v, ',' order by id) from staging.x")?,
        "kept,kept too"
    );
    f.assert_t_intact("after denials in transactions");
    Ok(())
}

// ------------------------------------------------------------------------------------------
// bypass attempts
// ------------------------------------------------------------------------------------------

#[test]
fn bypass_attempts_through_the_proxy_are_denied() -> Result<()> {
    let f = Fixture::start()?;
    // A file that COPY ... TO PROGRAM would create (as the server's OS user).
    let marker = PathBuf::from("/tmp").join(agent_tests::unique_name("policy-copy-program"));
    let program = format!("COPY public.t TO PROGRAM 'touch {}'", marker.display());
    let attempts: Vec<(&str, String, Option<&str>)> =
        vec![
        // Comments, case, whitespace.
        ("comment in a keyword pair", "DROP/**/TABLE public.t".into(), None),
        (
            "nested comment",
            "/* a /* nested */ comment */ DrOp TaBlE public.t".into(),
            None,
        ),
        ("line comment", "-- just a comment\ndrop table t".into(), None),
        (
            "case and whitespace",
            "dElEtE\n\t  FrOm\n PUBLIC . T   wHeRe   id=1".into(),
            None,
        ),
        ("TRUNCATE without TABLE", "TRUNCATE public.t".into(), None),
        ("TRUNCATE unqualified", "truncate t".into(), None),
        (
            "TRUNCATE ONLY ... CASCADE",
            "truncate only public.t restart identity cascade".into(),
            None,
        ),
        // Writes hidden in reads.
        (
            "writable CTE",
            "with d as (delete from public.t returning *) select * from d".into(),
            None,
        ),
        (
            "writable CTE in a subquery",
            "select * from public.t where id in \
             (with u as (update public.t set v = 'x' returning id) select id from u)"
                .into(),
            None,
        ),
        ("EXPLAIN ANALYZE", "EXPLAIN ANALYZE DELETE FROM public.t".into(), None),
        (
            "EXPLAIN (ANALYZE false)",
            "explain (analyze false) delete from public.t".into(),
            None,
        ),
        (
            "row locks",
            "select * from public.t for update".into(),
            None,
        ),
        // The server's files and programs.
        ("COPY TO PROGRAM", program.clone(), Some("builtin:copy-program")),
        (
            "COPY TO PROGRAM true",
            "COPY public.t TO PROGRAM 'true'".into(),
            Some("builtin:copy-program"),
        ),
        (
            "COPY FROM a file",
            "copy staging.x from '/etc/hostname'".into(),
            Some("builtin:copy-file"),
        ),
        (
            "pg_read_file",
            "select pg_read_file('/etc/passwd')".into(),
            Some("builtin:dangerous-function"),
        ),
        (
            "pg_read_file qualified, quoted, in a subquery",
            "select * from public.t where v = (select pg_catalog.\"pg_read_file\"('/etc/passwd'))"
                .into(),
            Some("builtin:dangerous-function"),
        ),
        (
            "set_config",
            "select set_config('search_path', 'evil', false)".into(),
            Some("builtin:dangerous-function"),
        ),
        // Session state.
        ("SET ROLE", "set role postgres".into(), None),
        ("SET SESSION AUTHORIZATION", "set session authorization postgres".into(), None),
        ("SET search_path", "set search_path = evil".into(), None),
        (
            "SET standard_conforming_strings",
            "set standard_conforming_strings = off".into(),
            Some("builtin:lexer-setting"),
        ),
        // Anonymous code.
        ("DO", "DO $$ begin delete from public.t; end $$".into(), None),
        (
            "DO with a language and a tag",
            "do language plpgsql $x$ begin execute 'delete from public.t'; end $x$".into(),
            None,
        ),
        // Names: quoting, Unicode escapes.
        ("quoted names", "delete from \"public\".\"t\" where id = 1".into(), None),
        ("Unicode-escaped name", "delete from U&\"t\" where id = 1".into(), None),
        (
            "Unicode-escaped qualified name",
            "delete from public.U&\"\\0074\" where id = 1".into(),
            None,
        ),
        (
            "Unicode-escaped audit table",
            "select * from public.U&\"aud\\0069t_log\"".into(),
            Some("no-audit"),
        ),
        (
            "audit table in a subquery",
            "select * from public.t where exists (select 1 from public.audit_log)".into(),
            Some("no-audit"),
        ),
        (
            "audit table copied into staging",
            "insert into staging.x select id, note from public.audit_log".into(),
            Some("no-audit"),
        ),
        ("TABLE", "TABLE public.audit_log".into(), Some("no-audit")),
        (
            "COPY TO STDOUT of the audit table",
            "copy public.audit_log to stdout".into(),
            Some("no-audit"),
        ),
        (
            "COPY of a writable query",
            "copy (delete from public.t returning *) to stdout".into(),
            None,
        ),
        (
            "SELECT INTO",
            "select * into staging.y from public.audit_log".into(),
            Some("no-audit"),
        ),
        (
            "dangerous function in FROM",
            "select * from rows from (pg_read_file('/etc/passwd')) as f".into(),
            Some("builtin:dangerous-function"),
        ),
        (
            "dangerous function in VALUES",
            "values (pg_read_file('/etc/passwd'))".into(),
            Some("builtin:dangerous-function"),
        ),
        (
            "dangerous function in an allowed INSERT",
            "insert into staging.x values (1, pg_read_file('/etc/hostname'))".into(),
            Some("builtin:dangerous-function"),
        ),
        // Privileges.
        ("ALTER ROLE", "alter role chunker nosuperuser".into(), None),
        ("GRANT", "grant all on public.t to public".into(), None),
        // Prepared statements.
        (
            "EXECUTE of a statement never prepared",
            "execute never_prepared".into(),
            Some("builtin:unknown-prepared-statement"),
        ),
        // Several statements: the harmless ones do not carry the rest.
        (
            "transaction control around a write",
            "commit; delete from public.t; begin".into(),
            None,
        ),
    ];
    for (what, sql, rule) in &attempts {
        let out = f.psql(&[sql])?;
        assert!(
            !out.status.success(),
            "{what}: `{sql}` was not denied: {}",
            out.describe()
        );
        let error = single_error(&out);
        f.assert_denied(&error, rule.unwrap_or("default-deny"));
        f.assert_t_intact(&format!("{what}: `{sql}`"));
    }
    assert!(
        !marker.exists(),
        "COPY ... TO PROGRAM ran: {} exists",
        marker.display()
    );
    assert_eq!(f.pg.admin_sql("select count(*) from staging.x")?, "0");
    assert_eq!(
        f.pg.admin_sql("select count(*) from public.audit_log")?,
        "1"
    );

    // The session state did not change: one session, the denied SETs, then what they would
    // have changed.
    let out = f.psql(&[
        "set role postgres",
        "set search_path = evil",
        "set session authorization postgres",
        "select current_user || '|' || session_user",
        "show search_path",
        "show standard_conforming_strings",
    ])?;
    assert_eq!(psql_errors(&out).len(), 3, "{}", out.describe());
    assert_eq!(
        stdout_lines(&out),
        [
            format!("{UPSTREAM_USER}|{UPSTREAM_USER}"),
            "\"$user\", public".to_string(),
            "on".to_string(),
        ],
        "{}",
        out.describe()
    );

    // Statements that only look dangerous are allowed (no false denial on text): a string
    // holding SQL, a comment holding SQL, a quoted identifier that is not the table.
    let out = f.psql(&[
        "select $$ ; delete from public.t; $$ as s",
        "select 1 /* ; delete from public.t; */",
        "select count(*) from public.t where v <> 'x''; drop table public.t; --'",
    ])?;
    assert!(out.status.success(), "{}", out.describe());
    assert_eq!(
        stdout_lines(&out),
        [" ; delete from public.t; ", "1", "5"],
        "{}",
        out.describe()
    );
    f.assert_t_intact("after look-alikes");

    // The server itself would have run the COPY TO PROGRAM and the SET ROLE for chunker.
    let direct = f.chunker_sql(&format!(
        "{program}; set role postgres; select current_user"
    ))?;
    assert!(direct.status.success(), "{}", direct.describe());
    assert_eq!(direct.stdout_text().trim(), "postgres");
    assert!(
        marker.exists(),
        "COPY TO PROGRAM did not run directly either"
    );
    let _ = std::fs::remove_file(&marker);
    Ok(())
}

// ------------------------------------------------------------------------------------------
// extended protocol, prepared statements, function calls
// ------------------------------------------------------------------------------------------

/// Checks a denial reported by `pg-scenarios` ([`outcome`] in the client): 42501, the
/// policy's message and detail, the DO block's fields stripped.
fn assert_scenario_denial(report: &Value, what: &str, rule: &str) {
    let d = &report[what];
    assert_eq!(d["succeeded"], false, "{what} was not denied: {report}");
    assert_eq!(d["sqlstate"], "42501", "{what}: {report}");
    assert_eq!(d["severity"], "ERROR", "{what}: {report}");
    assert!(
        d["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("permission denied by policy: ")),
        "{what}: {report}"
    );
    assert!(
        d["detail"]
            .as_str()
            .is_some_and(|m| m.starts_with(&format!("Denied by rule {rule}"))),
        "{what}: {report}"
    );
    assert!(
        d["hint"].as_str().is_some_and(|h| !h.is_empty()),
        "{what}: {report}"
    );
    for stripped in ["context", "file", "line", "routine"] {
        assert_eq!(
            d[stripped],
            Value::Null,
            "{what}: {stripped} kept: {report}"
        );
    }
}

#[test]
fn tokio_postgres_extended_protocol_denial_keeps_the_session_usable() -> Result<()> {
    let f = Fixture::start()?;
    let r = f.scenario_ok("policy-extended")?;
    assert_scenario_denial(&r, "prepare_denied", "default-deny");
    assert_eq!(r["count_after_prepare"], 5, "{r}");
    assert_eq!(
        r["prepared_values"],
        serde_json::json!(["v1", "v2", "v3", "v4", "v5", "v1", "v2", "v3", "v4", "v5"]),
        "{r}"
    );
    assert_scenario_denial(&r, "query_denied", "default-deny");
    assert_scenario_denial(&r, "execute_denied", "default-deny");
    assert_eq!(r["count_after_denied"], 5, "{r}");
    assert_scenario_denial(&r, "batch_denied", "default-deny");
    assert!(
        r["batch_denied"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("Statement 2 of 2 is denied")),
        "{r}"
    );
    assert_eq!(r["staging_after_batch"], 0, "{r}");
    // Pipelined: the denial does not disturb the requests around it.
    assert_eq!(r["pipelined"]["first"], "v3", "{r}");
    assert_eq!(r["pipelined"]["denied"]["sqlstate"], "42501", "{r}");
    assert_eq!(r["pipelined"]["last"], 5, "{r}");
    // In a transaction: denied, then aborted, then rolled back.
    assert_scenario_denial(&r, "tx_denied", "default-deny");
    assert_eq!(r["tx_after_denied"]["sqlstate"], "25P02", "{r}");
    assert_eq!(r["staging_after_rollback"], 0, "{r}");
    assert_eq!(
        r["staging_rows"],
        serde_json::json!([[8, "committed"]]),
        "{r}"
    );
    assert_eq!(r["count_final"], 5, "{r}");
    f.assert_t_intact("after the extended-protocol denials");

    // The denials were decided on Parse messages, and audited as such.
    let denied = f.wait_for_events(4, |e| {
        action_of(e) == "statement-denied" && e.str_at("chunk.statement.message") == Some("Parse")
    })?;
    for e in &denied {
        assert_eq!(e.str_at("rule.name"), Some("default-deny"), "{e}");
        let kinds = e.at("chunk.statement.kinds").cloned().unwrap_or_default();
        assert!(
            kinds == serde_json::json!(["DELETE"]) || kinds == serde_json::json!(["UPDATE"]),
            "{e}"
        );
    }
    f.wait_for_events(1, |e| {
        action_of(e) == "statement-denied" && e.str_at("chunk.statement.message") == Some("Query")
    })?;
    f.wait_for_events(10, |e| {
        action_of(e) == "statement-allowed" && e.str_at("chunk.statement.message") == Some("Parse")
    })?;
    Ok(())
}

/// The message types of a raw batch's response (`"1"`, `"2"`, `"C"`, `"E"`, `"Z"` ...).
fn types(report: &Value, batch: &str) -> Vec<String> {
    report[batch]
        .as_array()
        .unwrap_or_else(|| panic!("no {batch} in {report}"))
        .iter()
        .filter_map(|m| m["type"].as_str().map(str::to_string))
        .collect()
}

/// The ErrorResponse of a raw batch, checked to be a policy denial by `rule`.
fn raw_denial<'a>(report: &'a Value, batch: &str, rule: &str) -> &'a Value {
    let error = report[batch]
        .as_array()
        .and_then(|messages| messages.iter().find(|m| m["type"] == "E"))
        .unwrap_or_else(|| panic!("no ErrorResponse in {batch}: {report}"));
    let fields = &error["fields"];
    assert_eq!(fields["C"], "42501", "{batch}: {report}");
    assert_eq!(fields["S"], "ERROR", "{batch}: {report}");
    assert_eq!(fields["V"], "ERROR", "{batch}: {report}");
    assert!(
        fields["M"]
            .as_str()
            .is_some_and(|m| m.starts_with("permission denied by policy: ")),
        "{batch}: {report}"
    );
    assert!(
        fields["D"]
            .as_str()
            .is_some_and(|d| d.starts_with(&format!("Denied by rule {rule}"))),
        "{batch}: {report}"
    );
    assert!(fields["H"].as_str().is_some(), "{batch}: {report}");
    for stripped in ["W", "F", "L", "R"] {
        assert_eq!(
            fields[stripped],
            Value::Null,
            "{batch}: {stripped} kept: {report}"
        );
    }
    fields
}

#[test]
fn raw_extended_batches_with_a_denied_statement_answer_like_postgres() -> Result<()> {
    let f = Fixture::start()?;
    let r = f.scenario_ok("policy-extended-raw")?;
    // Parse/Bind/Execute of an allowed INSERT, then a denied Parse: the error comes where the
    // DELETE's Parse would have answered, the rest of the batch is skipped, and the implicit
    // transaction (the INSERT with it) is rolled back at Sync, as after any server error.
    assert_eq!(types(&r, "mixed"), ["1", "2", "C", "E", "Z"], "{r}");
    raw_denial(&r, "mixed", "default-deny");
    let mixed = r["mixed"].as_array().context("mixed")?;
    assert_eq!(mixed[2]["tag"], "INSERT 0 1", "{r}");
    assert_eq!(mixed[4]["status"], "I", "{r}");
    // Later batches naming the denied statement are denied too.
    assert_eq!(types(&r, "describe_denied"), ["E", "Z"], "{r}");
    raw_denial(&r, "describe_denied", "default-deny");
    assert_eq!(types(&r, "bind_denied"), ["E", "Z"], "{r}");
    raw_denial(&r, "bind_denied", "default-deny");
    // The allowed statement prepared in the denied batch still works.
    assert_eq!(
        types(&r, "allowed"),
        ["2", "C", "1", "2", "D", "C", "Z"],
        "{r}"
    );
    assert_eq!(r["t_count"], "5", "{r}");
    assert_eq!(r["closed"], false, "{r}");
    assert_eq!(
        f.pg.admin_sql("select id || ':' || v from staging.x")?,
        "1:raw"
    );
    f.assert_t_intact("after raw extended batches");
    let messages: Vec<String> = f
        .decisions()
        .iter()
        .filter(|e| action_of(e) == "statement-denied")
        .filter_map(|e| e.str_at("chunk.statement.message").map(str::to_string))
        .collect();
    assert_eq!(
        messages,
        ["Parse", "Describe", "Bind"],
        "{}",
        dump(&f.decisions())
    );
    Ok(())
}

#[test]
fn sql_prepare_and_execute_of_a_denied_statement_are_refused() -> Result<()> {
    let f = Fixture::start()?;
    let out = f.psql(&[
        "PREPARE d AS DELETE FROM public.t",
        "EXECUTE d",
        "prepare ok (int4) as select v from public.t where id = $1",
        "execute ok(4)",
        "prepare w (int4, text) as insert into staging.x values ($1, $2)",
        "execute w(1, 'prepared')",
        // A name once allowed, deallocated, then prepared again as a denied statement.
        "deallocate ok",
        "prepare ok as delete from public.t",
        "execute ok",
        // A denied statement prepared and executed in the same message.
        "prepare d2 as update public.t set v = 'x'; execute d2",
    ])?;
    let errors = psql_errors(&out);
    assert_eq!(errors.len(), 5, "{}", out.describe());
    f.assert_denied(&errors[0], "default-deny");
    f.assert_denied(&errors[1], "builtin:unknown-prepared-statement");
    f.assert_denied(&errors[2], "default-deny");
    f.assert_denied(&errors[3], "builtin:unknown-prepared-statement");
    f.assert_denied(&errors[4], "default-deny");
    assert_eq!(stdout_lines(&out), ["v4"], "{}", out.describe());
    assert_eq!(
        f.pg.admin_sql("select id || ':' || v from staging.x")?,
        "1:prepared"
    );
    f.assert_t_intact("after PREPARE/EXECUTE of denied statements");

    // The server would have prepared and run it for chunker.
    let direct = f.chunker_sql("prepare d as delete from public.t where id = 5; execute d")?;
    assert!(direct.status.success(), "{}", direct.describe());
    assert_eq!(f.t_state()?, "4|10|v1,v2,v3,v4");
    Ok(())
}

#[test]
fn function_call_message_is_denied() -> Result<()> {
    let f = Fixture::start()?;
    let r = f.scenario_ok("function-call")?;
    assert!(r["oid"].as_u64().is_some_and(|oid| oid > 0), "{r}");
    let fields = &r["error"]["fields"];
    assert_eq!(fields["C"], "42501", "{r}");
    assert_eq!(fields["S"], "ERROR", "{r}");
    assert!(
        fields["D"]
            .as_str()
            .is_some_and(|d| d.starts_with("Denied by rule builtin:function-call")),
        "{r}"
    );
    for stripped in ["W", "F", "L", "R"] {
        assert_eq!(fields[stripped], Value::Null, "{stripped} kept: {r}");
    }
    let response = r["function_call_response"]
        .as_array()
        .context("function_call_response")?;
    let types: Vec<&str> = response.iter().filter_map(|m| m["type"].as_str()).collect();
    assert_eq!(types, ["E", "Z"], "{r}");
    assert_eq!(response[1]["status"], "I", "{r}");
    assert_eq!(r["usable_after"], "still usable", "{r}");
    assert_eq!(r["closed"], false, "{r}");
    // lo_creat did not run.
    assert_eq!(
        f.pg.admin_sql("select count(*) from pg_largeobject_metadata")?,
        "0"
    );
    let e = f.agent.wait_for_event(
        |e| {
            action_of(e) == "statement-denied"
                && e.str_at("chunk.statement.message") == Some("FunctionCall")
        },
        EVENT_TIMEOUT,
    )?;
    assert_eq!(e.str_at("rule.name"), Some("builtin:function-call"), "{e}");
    Ok(())
}

// ------------------------------------------------------------------------------------------
// pgbench with a least-privilege policy
// ------------------------------------------------------------------------------------------

/// Read on the pgbench tables and the catalogs, write on the four tables pgbench's TPC-B-like
/// script writes, and (`history_denied`) a deny rule on `pgbench_history` writes.
fn pgbench_access(history_denied: bool) -> String {
    let mut access = String::from(
        r#"search_path = ["public"]
allow = [
    { name = "catalogs", operations = ["read"], tables = ["pg_catalog.*"] },
    { name = "read-bench", operations = ["read"], tables = ["public.pgbench_*"] },
    { name = "write-bench", operations = ["write"], tables = ["public.pgbench_accounts", "public.pgbench_tellers", "public.pgbench_branches", "public.pgbench_history"] },
]
"#,
    );
    if history_denied {
        access.push_str(
            "deny = [\n    { name = \"no-history\", operations = [\"write\"], tables = \
             [\"public.pgbench_history\"], reason = \"the history is written by the \
             application only\" },\n]\n",
        );
    }
    access
}

#[test]
fn pgbench_runs_under_a_least_privilege_policy() -> Result<()> {
    let mut f = Fixture::start_with(&pgbench_access(false))?;
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
    let run = |f: &Fixture| -> Result<Output> {
        f.run_job(&[
            pgbench.to_string_lossy().as_ref(),
            "-h",
            "127.0.0.1",
            "-p",
            &f.pg.port().to_string(),
            "-U",
            JOB_USER,
            "-n",
            "-M",
            "prepared",
            "-c",
            "2",
            "-j",
            "2",
            "-t",
            "50",
            "postgres",
        ])
    };

    let out = run(&f)?;
    assert!(out.status.success(), "{}", out.describe());
    let stdout = out.stdout_text();
    assert!(
        stdout.contains("number of transactions actually processed: 100/100"),
        "{}",
        out.describe()
    );
    assert_eq!(
        f.pg.admin_sql("select count(*) from pgbench_history")?,
        "100"
    );
    assert!(
        f.decisions()
            .iter()
            .all(|e| action_of(e) == "statement-allowed"),
        "{}",
        dump(&f.decisions())
    );
    let rules: std::collections::BTreeSet<String> = f
        .decisions()
        .iter()
        .filter_map(|e| e.str_at("rule.name").map(str::to_string))
        .collect();
    assert!(
        rules.contains("write-bench") && rules.contains("read-bench"),
        "{rules:?}"
    );

    // With history writes denied, every transaction fails at its INSERT: pgbench aborts.
    f.restart_agent(&pgbench_access(true))?;
    let out = run(&f)?;
    assert!(!out.status.success(), "{}", out.describe());
    let text = format!("{}\n{}", out.stdout_text(), out.stderr_text());
    assert!(
        text.contains("permission denied by policy")
            && text.contains("Denied by rule no-history ("),
        "{}",
        out.describe()
    );
    assert_eq!(
        f.pg.admin_sql("select count(*) from pgbench_history")?,
        "100"
    );
    // Decided on pgbench's Parse of the INSERT (then on the Binds of that statement).
    let denied = f.wait_for_events(1, |e| {
        action_of(e) == "statement-denied" && e.str_at("chunk.statement.message") == Some("Parse")
    })?;
    for e in &denied {
        assert_eq!(e.str_at("rule.name"), Some("no-history"), "{e}");
        assert_eq!(
            e.at("chunk.statement.kinds"),
            Some(&serde_json::json!(["INSERT"])),
            "{e}"
        );
    }
    for e in f.decisions() {
        if action_of(&e) != "statement-allowed" {
            assert_eq!(e.str_at("rule.name"), Some("no-history"), "{e}");
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// audit
// ------------------------------------------------------------------------------------------

#[test]
fn every_decision_is_audited_without_sql_text() -> Result<()> {
    let f = Fixture::start()?;
    let marker = "marker-9b1c";
    let out = f.psql(&[
        &format!("select count(*) from public.t where v <> '{marker}'"),
        &format!("select * from public.audit_log where note = '{marker}'"),
        &format!("delete from public.t where v = '{marker}'"),
        &format!("insert into staging.x values (1, '{marker}')"),
        &format!("delete from staging.x where v <> '{marker}' or true"),
    ])?;
    let errors = psql_errors(&out);
    assert_eq!(errors.len(), 3, "{}", out.describe());
    assert_eq!(stdout_lines(&out), ["5"], "{}", out.describe());

    let events = f.wait_for_events(5, |e| action_of(e).starts_with("statement-"))?;
    let expected = [
        ("statement-allowed", "read-app", "SELECT"),
        ("statement-denied", "no-audit", "SELECT"),
        ("statement-denied", "default-deny", "DELETE"),
        ("statement-allowed", "write-staging", "INSERT"),
        ("statement-needs-approval", "bulk-staging", "DELETE"),
    ];
    assert_eq!(events.len(), expected.len(), "{}", dump(&events));
    for (e, (action, rule, kind)) in events.iter().zip(expected) {
        assert_eq!(action_of(e), action, "{e}");
        assert_eq!(e.str_at("rule.name"), Some(rule), "{e}");
        assert_eq!(
            e.at("chunk.statement.kinds"),
            Some(&serde_json::json!([kind])),
            "{e}"
        );
        assert_eq!(e.str_at("chunk.statement.message"), Some("Query"), "{e}");
        assert_eq!(e.str_at("chunk.workload"), Some(WORKLOAD), "{e}");
        assert_eq!(e.str_at("chunk.target"), Some(TARGET), "{e}");
        assert!(e.at("chunk.statement.cached_decision").is_some(), "{e}");
        assert!(e.at("chunk.connection_id").is_some(), "{e}");
        assert_eq!(e.str_at("process.name"), Some("psql"), "{e}");
        let reason = e.str_at("event.reason");
        if action == "statement-denied" {
            assert!(reason.is_some_and(|r| !r.is_empty()), "{e}");
        } else {
            assert!(reason.is_none(), "{e}");
        }
    }
    assert!(
        events[1]
            .str_at("event.reason")
            .is_some_and(|r| r.contains("audit tables belong to the application")),
        "{}",
        events[1]
    );
    // Where the rules are written (default-deny: the access table).
    assert_eq!(
        events[1].str_at("rule.ruleset"),
        Some(f.rule_source("no-audit").as_str()),
        "{}",
        events[1]
    );
    assert_eq!(
        events[2].str_at("rule.ruleset"),
        f.source_of("default-deny").as_deref(),
        "{}",
        events[2]
    );

    // Nothing of the SQL text is in the audit log: neither the literal nor the statements.
    let audit = std::fs::read_to_string(f.agent.audit_path())?;
    for needle in [marker, "where v", "audit_log where", "delete from"] {
        assert!(
            !audit.contains(needle),
            "the audit log holds {needle:?}:\n{audit}"
        );
    }
    // Nor in the agent's own log (debug level in the harness).
    assert!(
        !f.agent.stderr_log().contains(marker),
        "the agent's log holds the literal:\n{}",
        f.agent.stderr_log()
    );
    Ok(())
}

#[test]
fn hot_query_decisions_come_from_the_cache() -> Result<()> {
    let f = Fixture::start()?;
    let script: String = (1..=20)
        .map(|i| {
            format!(
                "select v from public.t where id = {} and v <> 'lit-{i}';\n",
                i % 5 + 1
            )
        })
        .collect();
    let out = f.psql_script(&script)?;
    assert!(out.status.success(), "{}", out.describe());
    assert_eq!(stdout_lines(&out).len(), 20, "{}", out.describe());
    let events = f.wait_for_events(20, |e| action_of(e) == "statement-allowed")?;
    assert_eq!(events.len(), 20, "{}", dump(&events));
    let cached: Vec<bool> = events
        .iter()
        .map(|e| {
            e.at("chunk.statement.cached_decision")
                .and_then(Value::as_bool)
                .unwrap_or_else(|| panic!("no cached_decision: {e}"))
        })
        .collect();
    let mut expected = vec![true; 20];
    expected[0] = false;
    assert_eq!(cached, expected, "{}", dump(&events));
    for e in &events {
        assert_eq!(e.str_at("rule.name"), Some("read-app"), "{e}");
    }

    // A denied text is cached as well: the same decision, from the cache the second time.
    let out = f.psql(&[
        "delete from public.t where id = 1",
        "delete from public.t where id = 2",
    ])?;
    assert_eq!(psql_errors(&out).len(), 2, "{}", out.describe());
    let denied = f.wait_for_events(2, |e| action_of(e) == "statement-denied")?;
    let cached: Vec<Option<bool>> = denied
        .iter()
        .map(|e| {
            e.at("chunk.statement.cached_decision")
                .and_then(Value::as_bool)
        })
        .collect();
    assert_eq!(cached, [Some(false), Some(true)], "{}", dump(&denied));
    f.assert_t_intact("after cached denials");

    // The cache never lets a denied text pass for an allowed one with the same shape: each
    // pair's first text is allowed (and cached), the second one reads like it to a scanner
    // that gets PostgreSQL's lexing wrong, and must still be denied.
    let pairs = [
        (
            // UESCAPE '#': the identifier is `aud!0069t_log` (no such table: the server
            // says 42P01); UESCAPE '!': it is `audit_log`.
            "select * from public.U&\"aud!0069t_log\" UESCAPE '#'",
            "select * from public.U&\"aud!0069t_log\" UESCAPE '!'",
            "no-audit",
        ),
        (
            // A standard string: `\` is a plain character and `''` a quote, so all of it is
            // one literal. In an E'' string `\'` is the quote: the DELETE is code.
            "select '\\'' ; delete from public.t; --'",
            "select E'\\'' ; delete from public.t; --'",
            "default-deny",
        ),
        (
            // `a$$` is an identifier (a `$` inside a name), not the start of a dollar quote.
            "select 1 as a$$x$$",
            "select 1 as a$$; delete from public.t; select 1 as b$$",
            "default-deny",
        ),
    ];
    for (allowed, denied, rule) in pairs {
        let out = f.psql(&[allowed])?;
        assert!(
            psql_errors(&out).iter().all(|e| e.sqlstate != "42501"),
            "`{allowed}` was denied: {}",
            out.describe()
        );
        let out = f.psql(&[denied])?;
        let errors = psql_errors(&out);
        let error = errors
            .first()
            .filter(|e| e.sqlstate == "42501")
            .unwrap_or_else(|| panic!("`{denied}` was not denied: {}", out.describe()));
        f.assert_denied(error, rule);
        f.assert_t_intact(&format!("after `{denied}`"));
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// approvals
// ------------------------------------------------------------------------------------------

#[test]
fn approval_rules_refuse_until_approvals_exist() -> Result<()> {
    let f = Fixture::start()?;
    f.pg.admin_sql("insert into staging.x select g, 's' || g from generate_series(1, 4) g")?;
    for sql in [
        "delete from staging.x",
        "delete from staging.x where 1 = 1",
        "update staging.x set v = 'all'",
    ] {
        let out = f.psql(&[sql])?;
        assert!(!out.status.success(), "`{sql}`: {}", out.describe());
        let error = single_error(&out);
        assert_eq!(error.sqlstate, "42501", "`{sql}`: {}", error.text);
        assert!(
            error.message.contains("needs approval") && error.message.contains("bulk-staging"),
            "`{sql}`: {}",
            error.text
        );
        assert!(
            error
                .detail
                .as_deref()
                .is_some_and(|d| d.contains("approval")),
            "`{sql}`: {}",
            error.text
        );
        assert!(error.hint.is_some(), "`{sql}`: {}", error.text);
    }
    assert_eq!(
        f.pg.admin_sql("select string_agg(v, ',' order by id) from staging.x")?,
        "s1,s2,s3,s4"
    );
    let events = f.wait_for_events(3, |e| action_of(e) == "statement-needs-approval")?;
    for e in &events {
        assert_eq!(e.str_at("rule.name"), Some("bulk-staging"), "{e}");
    }
    // A targeted write is no bulk write: allowed by write-staging.
    let out = f.psql(&["delete from staging.x where id = 1"])?;
    assert!(out.status.success(), "{}", out.describe());
    assert_eq!(f.pg.admin_sql("select count(*) from staging.x")?, "3");
    Ok(())
}

#[test]
fn builtin_functions_that_run_sql_text_or_read_files_are_denied() -> Result<()> {
    let f = Fixture::start()?;
    // A DBA installed tablefunc (crosstab, connectby) in the database.
    f.pg.admin_sql("create extension tablefunc")?;
    // (statement, what it returns when the server runs it directly for chunker)
    let calls = [
        // On the built-in list.
        (
            "select query_to_xml('select note from public.audit_log', true, false, '')",
            "who did what",
        ),
        (
            "select word from ts_stat('select to_tsvector(''simple'', note) from public.audit_log') \
             order by word limit 1",
            "did",
        ),
        (
            "select * from crosstab('select note, note, note from public.audit_log') \
             as c(k text, v text)",
            "who did what",
        ),
        ("select pg_read_file('/etc/hostname') <> ''", "t"),
        // Not on the list, yet they run SQL given as text, or read the server's files, too.
        (
            "select ts_rewrite('leak'::tsquery, \
             'select ''leak''::tsquery, plainto_tsquery(''simple'', note) from public.audit_log')",
            "'who' & 'did' & 'what'",
        ),
        (
            "select string_agg(k, ',') from connectby('public.audit_log', 'note', 'id::text', \
             '1', 0) as c(k text, p text, level int)",
            "1,who did what",
        ),
        (
            "select pg_read_file_old('/etc/hostname', 0, 100) <> ''",
            "t",
        ),
    ];
    let mut not_denied = Vec::new();
    for (sql, leaked) in calls {
        // What the server would give chunker.
        let direct = f.chunker_sql(sql)?;
        assert!(direct.status.success(), "{}", direct.describe());
        assert!(
            direct.stdout_text().contains(leaked),
            "`{sql}` directly: {}",
            direct.describe()
        );
        let out = f.psql(&[sql])?;
        let errors = psql_errors(&out);
        match errors.first() {
            Some(error) if error.sqlstate == "42501" => {
                f.assert_denied(error, "builtin:dangerous-function");
            }
            _ => not_denied.push(format!(
                "`{sql}`: exit {:?}, stdout {:?}, stderr {:?}",
                out.status.code(),
                out.stdout_text().trim(),
                out.stderr_text().trim()
            )),
        }
    }
    assert!(
        not_denied.is_empty(),
        "not denied through the proxy (each leaks public.audit_log, denied by rule no-audit, \
         or a server file):\n{}",
        not_denied.join("\n")
    );
    Ok(())
}
