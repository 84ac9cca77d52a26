//! The `pg-scenarios` client itself, run directly against a throwaway PostgreSQL (no agent, no
//! interception) where the role `jobuser` exists and `trust` lets it in. These pin down what
//! each scenario reports on a plain server, so that a failure of the same scenario in
//! `postgres.rs` (through the agent's proxy) points at the proxy, not at the client.

#![forbid(unsafe_code)]

use agent_tests::{OutputExt, PgOptions, PgServer, run_with_timeout};
use anyhow::{Context, Result};
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

const SCENARIOS: &str = env!("CARGO_BIN_EXE_pg-scenarios");

fn server() -> Result<PgServer> {
    let pg = PgServer::start(PgOptions::default())?;
    pg.admin_sql("create role jobuser login")?;
    Ok(pg)
}

/// Runs a scenario directly against `pg` on 127.0.0.1; returns its JSON output.
fn scenario(pg: &PgServer, name: &str, args: &[&str]) -> Result<Value> {
    let out = run_with_timeout(
        Command::new(SCENARIOS)
            .args(["127.0.0.1", &pg.port().to_string(), name])
            .args(args),
        Duration::from_secs(120),
    )?;
    anyhow::ensure!(out.status.success(), "{name}: {}", out.describe());
    serde_json::from_str(out.stdout_text().trim())
        .with_context(|| format!("{name}: stdout is not JSON: {}", out.describe()))
}

#[test]
fn baseline_queries_transaction_prepared_binary() -> Result<()> {
    let pg = server()?;
    let q = scenario(&pg, "queries", &[])?;
    assert_eq!(
        q["simple_rows"],
        serde_json::json!([["1"], ["two", null], ["3"]])
    );
    assert_eq!(q["sum"], 42, "{q}");
    assert_eq!(q["shout"], "hey!", "{q}");
    assert_eq!(q["filtered"], serde_json::json!([3, 4, 5]), "{q}");
    assert_eq!(q["error_sqlstate"], "42703", "{q}");
    assert_eq!(q["current_user"], "jobuser", "{q}");

    let t = scenario(&pg, "transaction", &[])?;
    assert_eq!(t["inside"], 2, "{t}");
    assert_eq!(t["after_rollback"], 0, "{t}");
    assert_eq!(t["after_commit"], 1, "{t}");
    assert_eq!(t["error_sqlstate"], "22012", "{t}");
    assert_eq!(t["in_failed_sqlstate"], "25P02", "{t}");
    assert_eq!(t["after_simple_rollback"], 1, "{t}");

    let p = scenario(&pg, "prepared", &[])?;
    assert_eq!(p["sum"], 9900, "{p}");
    assert_eq!(p["last"], "n99", "{p}");
    assert_eq!(p["interleaved"], serde_json::json!([42, 42]), "{p}");

    let b = scenario(&pg, "binary", &[])?;
    assert_eq!(b["int8"], 9_000_000_000i64, "{b}");
    assert_eq!(b["bytea_hex"], "deadbeef00ff", "{b}");
    assert_eq!(b["uuid_hex"], "a0eebc999c0b4ef8bb6d6bb9bd380a11", "{b}");
    assert_eq!(b["timestamp_micros"], 1_704_164_645_678_000i64, "{b}");
    assert_eq!(b["timestamptz_micros"], 1_704_164_645_678_000i64, "{b}");
    assert_eq!(b["roundtrip_equal"], true, "{b}");
    Ok(())
}

#[test]
fn baseline_cancel_copy_notify_pipeline() -> Result<()> {
    let pg = server()?;
    let c = scenario(&pg, "cancel", &[])?;
    for cancel in c["cancels"].as_array().context("cancels")? {
        assert_eq!(cancel["sqlstate"], "57014", "{c}");
    }
    let copy = scenario(&pg, "copy", &[])?;
    assert_eq!(copy["copied_in"], 10_000, "{copy}");
    assert_eq!(copy["copied_out_lines"], 10_000, "{copy}");
    assert_eq!(
        copy["copied_out_bytes"], copy["expected_out_bytes"],
        "{copy}"
    );
    assert_eq!(copy["bad_copy_sqlstate"], "22P02", "{copy}");
    let n = scenario(&pg, "notify", &[])?;
    assert_eq!(n["payload"], n["expected_payload"], "{n}");
    let p = scenario(&pg, "pipeline", &[])?;
    assert_eq!(p["ok_count"], 49, "{p}");
    assert_eq!(p["errors"][0]["sqlstate"], "22012", "{p}");
    let u = scenario(&pg, "cancel-unknown", &[])?;
    assert_eq!(u["query_completed"], true, "{u}");
    Ok(())
}

#[test]
fn baseline_raw_protocol_scenarios() -> Result<()> {
    let pg = server()?;
    let s = scenario(&pg, "raw-startup", &["--ssl-request", "application_name=x"])?;
    assert_eq!(s["ssl_response"], "N", "{s}");
    assert_eq!(s["ready"], true, "{s}");
    assert_eq!(s["current_user"], "jobuser", "{s}");

    let r = scenario(&pg, "raw-startup", &["replication=database"])?;
    // A plain server accepts a replication connection from a superuser only.
    assert_eq!(r["ready"], false, "{r}");
    assert_eq!(r["error"]["fields"]["C"], "42501", "{r}");

    // PostgreSQL itself only logs "invalid message length" (COMMERROR) and closes: the
    // ErrorResponse 08P01 is the proxy's addition.
    let m = scenario(&pg, "malformed", &[])?;
    assert_eq!(m["closed"], true, "{m}");
    assert!(
        m["error"].is_null() || m["error"]["fields"]["C"] == "08P01",
        "{m}"
    );

    let k = scenario(&pg, "cancel-raw", &[])?;
    assert_eq!(k["wrong_key_sqlstate"], Value::Null, "{k}");
    assert_eq!(k["wrong_pid_sqlstate"], Value::Null, "{k}");
    assert_eq!(k["right_key_sqlstate"], "57014", "{k}");
    assert_eq!(k["usable_after"], "still here", "{k}");
    Ok(())
}

#[test]
fn baseline_large_result() -> Result<()> {
    let pg = server()?;
    let l = scenario(&pg, "large", &[])?;
    assert_eq!(l["rows"], 1_000_000, "{l}");
    assert_eq!(l["text_bytes"], 40_000_000, "{l}");
    assert_eq!(l["in_order"], true, "{l}");
    Ok(())
}

#[test]
fn baseline_failure_reports_the_sqlstate() -> Result<()> {
    let pg = PgServer::start(PgOptions::default())?;
    // No `jobuser` role here.
    let out = run_with_timeout(
        Command::new(SCENARIOS).args(["127.0.0.1", &pg.port().to_string(), "queries"]),
        Duration::from_secs(60),
    )?;
    assert!(!out.status.success(), "{}", out.describe());
    assert!(
        out.stderr_text().contains("(SQLSTATE 28000)"),
        "{}",
        out.describe()
    );
    let report: Value = serde_json::from_str(out.stdout_text().trim())?;
    assert_eq!(report["ok"], false);
    assert_eq!(report["sqlstate"], "28000");
    assert_eq!(report["severity"], "FATAL");
    Ok(())
}
