//! End-to-end masking: unmodified clients (psql, tokio-postgres in text and binary formats,
//! psycopg 3) run under `agent exec`, their connections intercepted by eBPF and served by the
//! agent's proxy with `mask` rules; what they receive is checked cell by cell, and the planted
//! raw values are searched for in everything they printed.

use agent_tests::job::{self, JOB_USER, parse_report};
use agent_tests::policy::{PERMISSIVE_ACCESS, PostgresPolicy};
use agent_tests::{
    AgentOptions, AgentProcess, JsonPath, OutputExt, PgOptions, PgServer, Secret, action_of,
    loopback_addresses, run_with_timeout,
};
use anyhow::{Context, Result, ensure};
use serde_json::Value;
use std::process::Output;
use std::time::Duration;

const WORKLOAD: &str = "mask-job";
const TARGET: &str = "mask-db";
const UPSTREAM_USER: &str = "chunker";
const SCENARIOS: &str = env!("CARGO_BIN_EXE_pg-scenarios");
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Planted raw values: none may reach a job.
const CARD: &str = "4111111111111111";
const CARD_2: &str = "5500005555555559";
const EMAIL: &str = "bob@example.com";
const NOTE_CARD: &str = "4012888888881881";

const SCHEMA: &str = "create table public.customers (id int4 primary key, email text unique, \
     card text, note text, pin int4); \
     insert into public.customers values \
       (1, 'bob@example.com', '4111111111111111', 'paid with 4012888888881881', 1234), \
       (2, 'ann@example.org', '5500005555555559', 'no card here', 5678), \
       (3, null, null, null, null); \
     grant all on all tables in schema public to chunker";

/// Column rules for the card (partial) and email (hash) columns, a result-column rule for
/// `email*` expressions, and a content rule for cards and e-mail addresses anywhere else.
const MASK: &str = r#"
masking_key = { file = "@KEY@" }
mask = [
  { name = "cards", columns = ["public.customers.card"], strategy = "partial", keep_last = 4 },
  { name = "emails", columns = ["public.customers.email"], strategy = "hash" },
  { name = "email-exprs", result_columns = ["email*"], strategy = "redact" },
  { name = "pii-in-text", detectors = ["card", "email"], strategy = "redact" },
  @EXTRA@
]"#;

struct Fixture {
    agent: AgentProcess,
    pg: PgServer,
    _secret: Secret,
    _key: Secret,
}

impl Fixture {
    fn start() -> Result<Self> {
        Self::start_with("", "")
    }

    /// `rules`: more mask rules (inline tables, each followed by a comma); `extra`: more lines
    /// of the access table (e.g. `copy_out_masked`).
    fn start_with(rules: &str, extra: &str) -> Result<Self> {
        let pg = PgServer::start(PgOptions::default())?;
        let secret = Secret::random("S3cr3t-Mask-")?;
        let key = Secret::random("mask-key-0123456789-")?;
        pg.create_login_role(UPSTREAM_USER, secret.value())?;
        pg.admin_sql(SCHEMA)?;
        let mut policy = PostgresPolicy::new(
            WORKLOAD,
            TARGET,
            loopback_addresses(pg.port()),
            UPSTREAM_USER,
            &secret.path(),
        );
        let mask = MASK
            .replace("@KEY@", &key.path().to_string_lossy())
            .replace("@EXTRA@", rules);
        policy.access = Some(format!("{PERMISSIVE_ACCESS}\n{mask}\n{extra}"));
        let agent = AgentProcess::start_with(AgentOptions::with_policy(&policy.to_toml()))?;
        Ok(Self {
            agent,
            pg,
            _secret: secret,
            _key: key,
        })
    }

    fn job(&self, args: &[String]) -> Result<Output> {
        run_with_timeout(
            &mut job::job_command(&self.agent, WORKLOAD, args),
            CLIENT_TIMEOUT,
        )
    }

    fn psql_args(&self, extra: &[&str]) -> Vec<String> {
        let mut args = job::psql_args(
            &self.pg.psql_path(),
            "127.0.0.1",
            self.pg.port(),
            &["-v", "ON_ERROR_STOP=1"],
        );
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    /// psql with one `-c` per statement; its output whatever the outcome.
    fn psql(&self, statements: &[&str]) -> Result<Output> {
        let mut extra = Vec::new();
        for s in statements {
            extra.extend(["-c", s]);
        }
        self.job(&self.psql_args(&extra))
    }

    fn psql_ok(&self, statements: &[&str]) -> Result<String> {
        let out = self.psql(statements)?;
        ensure!(out.status.success(), "psql failed: {}", out.describe());
        Ok(out.stdout_text())
    }

    fn scenario(&self, args: &[&str]) -> Result<Value> {
        let mut argv = vec![
            SCENARIOS.to_string(),
            "127.0.0.1".into(),
            self.pg.port().to_string(),
        ];
        argv.extend(args.iter().map(|a| a.to_string()));
        let out = self.job(&argv)?;
        ensure!(
            out.status.success(),
            "pg-scenarios failed: {}",
            out.describe()
        );
        parse_report(&out)
    }

    fn masked_events(&self) -> Vec<Value> {
        self.agent.events_with_action("values-masked")
    }
}

/// Fails if a planted raw value appears in `text`.
fn assert_no_raw_value(text: &str, context: &str) {
    for raw in [CARD, CARD_2, EMAIL, NOTE_CARD] {
        assert!(
            !text.contains(raw),
            "{context}: the raw value {raw} reached the job:\n{text}"
        );
    }
}

/// The keyed-hash token shape: `h:` and 24 hex digits.
fn is_hash_token(v: &str) -> bool {
    v.len() == 26 && v.starts_with("h:") && v[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

#[test]
fn psql_rows_are_masked_by_column_and_content_rules_and_null_stays_null() -> Result<()> {
    let f = Fixture::start()?;
    let out = f.psql_ok(&["select id, email, card, note from customers order by id"])?;
    assert_no_raw_value(&out, "psql select");
    let rows: Vec<Vec<&str>> = out.lines().map(|l| l.split('|').collect()).collect();
    assert_eq!(rows.len(), 3, "{out}");
    assert_eq!(rows[0][0], "1");
    assert!(is_hash_token(rows[0][1]), "email not hashed: {out}");
    assert!(is_hash_token(rows[1][1]), "email not hashed: {out}");
    assert_ne!(rows[0][1], rows[1][1], "different emails, same token");
    assert_eq!(rows[0][2], "************1111");
    assert_eq!(rows[1][2], "************5559");
    assert_eq!(rows[0][3], "paid with [REDACTED:card]");
    assert_eq!(
        rows[1][3], "no card here",
        "a note without a card is unchanged"
    );
    assert_eq!(
        rows[2],
        ["3", "", "", ""],
        "NULLs stay NULL (psql prints them empty)"
    );

    // The hash is deterministic: the same email gives the same token in another session, so
    // joins and GROUP BY still work.
    let again = f.psql_ok(&["select email from customers where id = 1"])?;
    assert_eq!(again.trim(), rows[0][1]);

    // The audit event of the statement counts what was masked, per rule, never a value.
    let event = f.agent.wait_for_event(
        |e| action_of(e) == "values-masked" && e.u64_at("chunk.masking.total") == Some(5),
        EVENT_TIMEOUT,
    )?;
    let rules = event["chunk"]["masking"]["rules"].to_string();
    for rule in ["cards", "emails", "pii-in-text"] {
        assert!(rules.contains(rule), "rule {rule} not counted: {rules}");
    }
    assert_no_raw_value(&std::fs::read_to_string(f.agent.audit_path())?, "audit log");
    assert_no_raw_value(&f.agent.stderr_log(), "agent log");
    Ok(())
}

#[test]
fn returning_rows_expressions_and_subqueries_are_masked() -> Result<()> {
    let f = Fixture::start()?;
    let out = f.psql_ok(&[
        "update customers set note = note where id = 1 returning card, email",
        "select email as email_copy, lower(email) as email_lower from customers where id = 1",
        "select card from (select * from customers) s where id = 2",
    ])?;
    assert_no_raw_value(&out, "psql");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("************1111|h:"), "{out}");
    // An alias keeps the column's origin (hashed); an expression has none and is matched by
    // its name (email_lower: result_columns email*).
    let cells: Vec<&str> = lines[2].split('|').collect();
    assert!(is_hash_token(cells[0]), "{out}");
    assert_eq!(cells[1], "[REDACTED]", "{out}");
    assert_eq!(
        lines[3], "************5559",
        "a subquery keeps the origin: {out}"
    );
    Ok(())
}

#[test]
fn a_whole_row_of_a_covered_table_is_withheld_not_sent() -> Result<()> {
    let f = Fixture::start()?;
    // `select c from customers c` returns each row as one record: the card rule covers a
    // column of it and cannot rewrite a record with strategy partial, so the result fails.
    let out = f.psql(&["select c from customers c order by id"])?;
    assert!(!out.status.success(), "served: {}", out.describe());
    let stderr = out.stderr_text();
    assert!(stderr.contains("public.customers.*"), "{stderr}");
    assert!(stderr.contains("cards"), "{stderr}");
    assert_no_raw_value(&out.stdout_text(), "whole row");
    Ok(())
}

#[test]
fn tokio_postgres_text_binary_and_cached_prepared_results_are_masked() -> Result<()> {
    let f = Fixture::start()?;
    let report = f.scenario(&[
        "rows",
        "select id, email, card, note from customers order by id",
    ])?;
    let text = report.to_string();
    assert_no_raw_value(&text, "tokio-postgres");
    let statement = &report["statements"][0];
    let simple = &statement["simple"];
    let extended = &statement["extended"];
    // Simple protocol (text) and extended protocol (binary) give the same masked values.
    assert_eq!(simple, extended, "text and binary results differ");
    assert_eq!(extended[0][2], "************1111");
    assert_eq!(extended[0][3], "paid with [REDACTED:card]");
    assert!(extended[2][1].is_null() && extended[2][2].is_null());
    // A prepared statement run twice (the second Execute relies on the cached description).
    for run in statement["prepared"].as_array().context("prepared runs")? {
        assert_eq!(run, extended, "prepared run differs");
    }
    Ok(())
}

#[test]
fn psycopg_results_are_masked_in_text_and_binary() -> Result<()> {
    let f = Fixture::start()?;
    let script = format!(
        "import psycopg, json\n\
         with psycopg.connect(host='127.0.0.1', port={port}, user='{JOB_USER}', dbname='postgres') as c:\n\
         \x20   text = c.execute('select email, card, note from customers order by id').fetchall()\n\
         \x20   binary = c.cursor(binary=True).execute('select email, card, note from customers order by id').fetchall()\n\
         \x20   print(json.dumps({{'text': text, 'binary': binary}}))\n",
        port = f.pg.port()
    );
    let out = f.job(&["python3".into(), "-c".into(), script])?;
    ensure!(out.status.success(), "psycopg failed: {}", out.describe());
    let text = out.stdout_text();
    assert_no_raw_value(&text, "psycopg");
    let report: Value = serde_json::from_str(text.trim())?;
    assert_eq!(report["text"], report["binary"], "{text}");
    assert_eq!(report["text"][0][1], "************1111", "{text}");
    Ok(())
}

#[test]
fn copy_out_is_masked_in_text_csv_and_binary_formats() -> Result<()> {
    let f = Fixture::start()?;
    for (format, sql) in [
        ("text", "copy customers (id, card, note) to stdout"),
        ("csv", "copy customers to stdout with (format csv, header)"),
        (
            "query",
            "copy (select email, card from customers order by id) to stdout with (format csv)",
        ),
        (
            "binary",
            "copy customers (card, email) to stdout with (format binary)",
        ),
    ] {
        let out = f.psql(&[sql])?;
        ensure!(out.status.success(), "{format}: {}", out.describe());
        let data = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_no_raw_value(&data, format);
        assert!(data.contains("************1111"), "{format}: {data}");
    }
    let csv = f.psql_ok(&["copy customers (id, card) to stdout with (format csv)"])?;
    assert_eq!(
        csv.lines().collect::<Vec<_>>(),
        ["1,************1111", "2,************5559", "3,"]
    );
    Ok(())
}

#[test]
fn copy_out_of_a_masked_column_is_refused_when_the_policy_says_refuse() -> Result<()> {
    let f = Fixture::start_with("", "copy_out_masked = \"refuse\"")?;
    let out = f.psql(&["copy customers (id, card) to stdout"])?;
    assert!(!out.status.success(), "COPY served: {}", out.describe());
    let stderr = out.stderr_text();
    assert!(stderr.contains("copy_out_masked"), "{stderr}");
    assert_no_raw_value(&String::from_utf8_lossy(&out.stdout), "refused COPY");
    // A COPY of columns no column rule covers still runs (content rules mask it).
    let ok = f.psql_ok(&["copy customers (id, note) to stdout"])?;
    assert!(ok.contains("[REDACTED:card]"), "{ok}");
    Ok(())
}

#[test]
fn error_details_and_notification_payloads_are_masked() -> Result<()> {
    let f = Fixture::start()?;
    // A unique violation quotes the key in its DETAIL.
    let out = f.psql(&["insert into customers (id, email) values (9, 'bob@example.com')"])?;
    assert!(!out.status.success());
    let stderr = out.stderr_text();
    assert!(
        stderr.contains("23505") || stderr.contains("duplicate key"),
        "{stderr}"
    );
    assert!(!stderr.contains(EMAIL), "raw email in the error: {stderr}");
    let out = f.psql_ok(&[
        "listen ch",
        "notify ch, 'card 4012888888881881 for bob@example.com'",
    ]);
    // psql prints notifications on stdout (-c runs each command in the same session).
    let out = out?;
    assert_no_raw_value(&out, "notification");
    Ok(())
}

#[test]
fn a_value_that_cannot_be_masked_fails_the_result_without_sending_it() -> Result<()> {
    let f = Fixture::start_with(
        r#"{ name = "pins", columns = ["public.customers.pin"], strategy = "partial" },"#,
        "",
    )?;
    let out = f.psql(&["select id, pin from customers order by id"])?;
    assert!(!out.status.success(), "served: {}", out.describe());
    let text = format!("{}{}", out.stdout_text(), out.stderr_text());
    assert!(text.contains("withheld"), "{text}");
    assert!(text.contains("pins"), "the error names the rule: {text}");
    for raw in ["1234", "5678"] {
        assert!(!out.stdout_text().contains(raw), "{text}");
    }
    Ok(())
}

#[test]
fn a_million_row_result_is_masked_row_by_row() -> Result<()> {
    let f = Fixture::start()?;
    let out = f.psql_ok(&[
        "select g, 'user' || g || '@example.com' as email_addr, '4111111111111111' as plain \
         from generate_series(1, 1000000) g",
    ])?;
    let mut rows = 0;
    for line in out.lines() {
        rows += 1;
        let cells: Vec<&str> = line.split('|').collect();
        assert_eq!(cells.len(), 3, "{line}");
        assert_eq!(cells[1], "[REDACTED]", "{line}");
        assert_eq!(cells[2], "[REDACTED:card]", "{line}");
    }
    assert_eq!(rows, 1_000_000);
    let event = f.agent.wait_for_event(
        |e| action_of(e) == "values-masked" && e.u64_at("chunk.masking.total") == Some(2_000_000),
        EVENT_TIMEOUT,
    )?;
    assert!(event["chunk"]["masking"]["rules"].is_array());
    assert!(!f.masked_events().is_empty());
    Ok(())
}
