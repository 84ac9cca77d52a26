//! End-to-end approvals: a job's statement that an `approve` rule matches is held by the proxy
//! (the client gets a notice naming the request), an approver approves or denies it with
//! `agent approvals` and a signed token, and the statement then runs, or fails with 42501
//! naming the request and the approver. Real kernel, real PostgreSQL, real psql.

#![forbid(unsafe_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use agent_tests::job;
use agent_tests::jwt::Issuer;
use agent_tests::policy::PostgresPolicy;
use agent_tests::{
    AgentOptions, AgentProcess, JsonPath, OutputExt, PgOptions, PgServer, Secret, action_of,
    free_port, loopback_addresses, run_with_timeout,
};
use anyhow::{Context, Result, ensure};
use serde_json::json;

const WORKLOAD: &str = "approval-job";
const TARGET: &str = "approval-db";
const ISSUER: &str = "https://idp.agent-tests.invalid";
const AUDIENCE: &str = "chunk-approvals";
const EVENT_TIMEOUT: Duration = Duration::from_secs(15);

/// Deletes on `public.t` need one approver from group `dba`, within 60 s.
const ACCESS: &str = r#"allow = [{ name = "read", operations = ["read"], tables = ["public.*"] }]
approve = [{ name = "deletes", operations = ["write"], tables = ["public.t"], approvers = 1, groups = ["dba"], timeout = "60s" }]"#;

struct Fixture {
    agent: AgentProcess,
    pg: PgServer,
    issuer: Issuer,
    api: String,
    dir: tempfile::TempDir,
    _secret: Secret,
}

impl Fixture {
    fn start() -> Result<Self> {
        let pg = PgServer::start(PgOptions::default())?;
        let secret = Secret::random("Approve-Secret-")?;
        pg.create_login_role("chunker", secret.value())?;
        pg.admin_sql(
            "create table t (id int4 primary key); insert into t values (1), (2); \
             grant all on t to chunker",
        )?;
        let dir = tempfile::tempdir()?;
        let issuer = Issuer::new("approvers-1");
        let jwks = dir.path().join("jwks.json");
        std::fs::write(&jwks, issuer.jwks().to_string())?;
        let mut policy = PostgresPolicy::new(
            WORKLOAD,
            TARGET,
            loopback_addresses(pg.port()),
            "chunker",
            &secret.path(),
        );
        policy.access = Some(ACCESS.into());
        let port = free_port()?;
        let agent = AgentProcess::start_with(AgentOptions {
            extra_args: vec![
                "--approval-listen".into(),
                format!("127.0.0.1:{port}"),
                "--approval-issuer".into(),
                ISSUER.into(),
                "--approval-audience".into(),
                AUDIENCE.into(),
                "--approval-jwks-file".into(),
                jwks.to_string_lossy().into_owned(),
            ],
            ..AgentOptions::with_policy(&policy.to_toml())
        })?;
        Ok(Self {
            agent,
            pg,
            issuer,
            api: format!("http://127.0.0.1:{port}"),
            dir,
            _secret: secret,
        })
    }

    /// psql running `sql` as a job, in the background (it waits for the approval).
    fn spawn_psql(&self, sql: &str) -> Result<Child> {
        let args = job::psql_args(
            &self.pg.psql_path(),
            "127.0.0.1",
            self.pg.port(),
            &["-v", "ON_ERROR_STOP=1", "-c", sql],
        );
        Ok(job::job_command(&self.agent, WORKLOAD, &args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?)
    }

    /// The id of the next approval request filed.
    fn requested(&self) -> Result<String> {
        let event = self
            .agent
            .wait_for_event(|e| action_of(e) == "approval-requested", EVENT_TIMEOUT)?;
        Ok(event
            .str_at("chunk.approval.id")
            .context("request id")?
            .to_owned())
    }

    /// `agent approvals <args>` as approver `subject` of `groups`.
    fn approvals(
        &self,
        subject: &str,
        groups: &[&str],
        args: &[&str],
    ) -> Result<std::process::Output> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let token = self.issuer.sign(&json!({
            "iss": ISSUER, "aud": AUDIENCE, "sub": subject, "groups": groups,
            "iat": now - 5, "nbf": now - 5, "exp": now + 300,
        }));
        let token_file = self.dir.path().join(format!("{subject}.jwt"));
        std::fs::write(&token_file, token)?;
        run_with_timeout(
            Command::new(agent_tests::agent_bin())
                .args(["approvals", "--url", &self.api, "--token-file"])
                .arg(&token_file)
                .args(args),
            Duration::from_secs(30),
        )
    }

    fn rows_of_t(&self) -> Result<String> {
        self.pg.admin_sql("select count(*) from t")
    }
}

fn finish(child: Child) -> Result<std::process::Output> {
    Ok(child.wait_with_output()?)
}

#[test]
fn a_held_delete_runs_once_an_approver_of_the_group_approves_it() -> Result<()> {
    let f = Fixture::start()?;
    let psql = f.spawn_psql("delete from t where id = 1")?;
    let id = f.requested()?;
    // Held: nothing reached the server yet.
    ensure!(
        f.rows_of_t()?.trim() == "2",
        "the delete ran before approval"
    );
    // Someone outside the group cannot approve; the requesting workload cannot approve itself.
    let out = f.approvals("mallory", &["dev"], &["approve", &id])?;
    ensure!(
        !out.status.success(),
        "approved by a non-member: {}",
        out.describe()
    );
    let out = f.approvals(WORKLOAD, &["dba"], &["approve", &id])?;
    ensure!(
        !out.status.success(),
        "self-approval accepted: {}",
        out.describe()
    );
    let out = f.approvals("alice", &["dba"], &["approve", &id])?;
    ensure!(out.status.success(), "{}", out.describe());
    let out = finish(psql)?;
    ensure!(out.status.success(), "psql: {}", out.describe());
    // The client was told it waited, with the request id.
    ensure!(
        out.stderr_text().contains(&id),
        "no notice naming {id}: {}",
        out.describe()
    );
    ensure!(out.stdout_text().contains("DELETE 1"), "{}", out.describe());
    ensure!(f.rows_of_t()?.trim() == "1");
    f.agent
        .wait_for_event(|e| action_of(e) == "approval-approved", EVENT_TIMEOUT)?;
    Ok(())
}

#[test]
fn a_denied_statement_fails_with_42501_naming_the_request_and_the_session_stays_usable()
-> Result<()> {
    let f = Fixture::start()?;
    // One session: the delete is denied, then the select runs in the same session.
    let args = job::psql_args(
        &f.pg.psql_path(),
        "127.0.0.1",
        f.pg.port(),
        &[
            "-c",
            "delete from t where id = 2",
            "-c",
            "select count(*) from t",
        ],
    );
    let psql = job::job_command(&f.agent, WORKLOAD, &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let id = f.requested()?;
    let out = f.approvals("bob", &["dba"], &["deny", &id])?;
    ensure!(out.status.success(), "{}", out.describe());
    let out = finish(psql)?;
    let stderr = out.stderr_text();
    ensure!(
        stderr.contains("42501") || stderr.contains("denied"),
        "{stderr}"
    );
    ensure!(stderr.contains(&id) && stderr.contains("bob"), "{stderr}");
    ensure!(
        out.stdout_text().trim() == "2",
        "session unusable after the denial: {}",
        out.describe()
    );
    ensure!(f.rows_of_t()?.trim() == "2", "the denied delete ran");
    Ok(())
}

#[test]
fn a_grant_lets_matching_statements_run_without_waiting() -> Result<()> {
    let f = Fixture::start()?;
    let out = f.approvals(
        "carol",
        &["dba"],
        &[
            "grant",
            "--workload",
            WORKLOAD,
            "--target",
            TARGET,
            "--operations",
            "write",
            "--tables",
            "public.t",
            "--for",
            "10m",
        ],
    )?;
    ensure!(out.status.success(), "{}", out.describe());
    let out = finish(f.spawn_psql("delete from t where id = 1")?)?;
    ensure!(out.status.success(), "{}", out.describe());
    ensure!(f.rows_of_t()?.trim() == "1");
    f.agent
        .wait_for_event(|e| action_of(e) == "grant-used", EVENT_TIMEOUT)?;
    Ok(())
}
