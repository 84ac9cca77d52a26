//! SQL decisions: arbitrary SQL text classified and decided against a fixed access policy
//! ([`chunk_agent::sql::AccessControl`]) never panics, and the decision cache never changes a
//! decision.
//!
//! Differential check: each text is decided through the cache (twice: a miss then, when the
//! text has a fingerprint and is cacheable, a hit) and without it; the decisions (of the message
//! and of every statement) must be equal. The access control lives across inputs, so a text
//! also meets evaluations cached for earlier texts with the same fingerprint: this checks the
//! cache's premise that texts differing only in literal values decide alike.
#![no_main]

use chunk_agent::policy::parse_sources;
use chunk_agent::sql::{AccessControl, NoPreparedStatements, Verdict};
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

const POLICY: &str = r#"
[[workload]]
name = "fuzz-chunker"
targets = ["fuzz-db"]

[[target]]
name = "fuzz-db"
protocol = "postgres"
addresses = ["127.0.0.1:5432"]

[target.tls]
mode = "disable"

[target.credentials]
mode = "static"
username = "chunker"
password = { env = "FUZZ_UNUSED_PASSWORD" }

[[workload.access]]
target = "fuzz-db"
search_path = ["public"]
allow = [
    { name = "catalogs", operations = ["read"], tables = ["pg_catalog.*", "information_schema.*"] },
    { name = "read-app", operations = ["read"], tables = ["public.*", "staging.*"] },
    { name = "write-staging", operations = ["write", "copy_in"], tables = ["staging.*"] },
    { name = "settings", operations = ["set"] },
]
deny = [
    { name = "no-audit", operations = ["read", "write"], tables = ["*.audit_*"], reason = "audit tables belong to the application" },
]
approve = [
    { name = "bulk-staging", operations = ["bulk_write"], tables = ["staging.*"] },
]
"#;

fn control() -> &'static AccessControl {
    static CONTROL: OnceLock<AccessControl> = OnceLock::new();
    CONTROL.get_or_init(|| {
        let set = parse_sources(&[(PathBuf::from("fuzz.toml"), POLICY.to_string())])
            .unwrap_or_else(|e| panic!("the fixed fuzz policy is invalid: {e}"));
        let workload = &set.workloads[0];
        AccessControl::new(
            &workload.name,
            "fuzz-db",
            Some(workload.access_for("fuzz-db").expect("access rules")),
        )
    })
}

/// The decisions of a verdict: the message's, and each statement's.
fn decisions(v: &Verdict) -> (String, Vec<String>) {
    (
        format!("{:?}", v.decision()),
        v.statements()
            .iter()
            .map(|s| format!("{:?}", s.decision))
            .collect(),
    )
}

fuzz_target!(|data: &[u8]| {
    // The proxy only ever decides UTF-8 text without NUL: the codec refuses other bytes, and
    // a Query's or Parse's text ends at its first NUL.
    let Ok(sql) = std::str::from_utf8(data) else {
        return;
    };
    if sql.contains('\0') {
        return;
    }
    let control = control();
    let uncached = control.decide_uncached(sql, &NoPreparedStatements);
    assert!(!uncached.was_cached());
    let first = control.decide(sql, &NoPreparedStatements);
    let second = control.decide(sql, &NoPreparedStatements);
    let expected = decisions(&uncached);
    assert_eq!(
        decisions(&first),
        expected,
        "cached decision differs for {sql:?}"
    );
    assert_eq!(
        decisions(&second),
        expected,
        "cached decision differs for {sql:?}"
    );
    if uncached.decision().is_denied() {
        let denial = uncached
            .denial()
            .expect("a denied message has its error fields");
        assert_eq!(denial.sqlstate, "42501");
    } else {
        assert!(uncached.denial().is_none());
    }
});
