//! The engine as a whole: policy text in, decisions out. The corpus (`corpus.toml`), the
//! rule kinds and their precedence, prepared statements, the cache and its key.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use proptest::prelude::*;
use serde::Deserialize;

use super::*;
use crate::policy::parse_sources;

/// The corpus file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Corpus {
    policy: String,
    case: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    sql: String,
    decision: String,
    rule: String,
    statement: Option<usize>,
    parse: Option<String>,
    #[allow(dead_code)]
    why: Option<String>,
}

fn corpus() -> Corpus {
    toml::from_str(include_str!("corpus.toml")).expect("corpus.toml")
}

/// The access control of the first workload for its first target, from policy text.
fn control(policy: &str) -> AccessControl {
    let set = parse_sources(&[(PathBuf::from("p.toml"), policy.to_string())])
        .unwrap_or_else(|e| panic!("test policy:\n{e}"));
    let w = &set.workloads[0];
    AccessControl::new(&w.name, &w.targets[0], w.access_for(&w.targets[0]))
}

/// A policy for workload `w` on target `db` with `access` as its access table body.
fn policy(access: &str) -> AccessControl {
    control(&format!(
        "[[workload]]\nname = \"w\"\ntargets = [\"db\"]\n\n[[workload.access]]\ntarget = \"db\"\n\
         {access}\n\n[[target]]\nname = \"db\"\nprotocol = \"postgres\"\n\
         addresses = [\"127.0.0.1:5432\"]\n[target.credentials]\nusername = \"u\"\n\
         password = {{ env = \"PW\" }}\n"
    ))
}

fn decide(control: &AccessControl, sql: &str) -> Decision {
    control
        .decide_uncached(sql, &NoPreparedStatements)
        .decision()
        .clone()
}

/// Runs the corpus as one session; returns a report of every mismatch (empty if none) and
/// the decisions, in order.
fn run_corpus(control: &AccessControl, cases: &[Case]) -> (String, Vec<Decision>) {
    let mut session: HashMap<String, Decision> = HashMap::new();
    let mut report = String::new();
    let mut decisions = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let verdict = control.decide(&case.sql, &session);
        let decision = verdict.decision().clone();
        match &case.parse {
            Some(name) => {
                session.insert(name.clone(), verdict.decision_to_remember());
            }
            None if !decision.is_denied() => {
                for (name, remembered) in verdict.prepared_changes() {
                    match (name, remembered) {
                        (Some(name), Some(d)) => {
                            session.insert(name.to_string(), d.clone());
                        }
                        (Some(name), None) => {
                            session.remove(name);
                        }
                        (None, _) => session.clear(),
                    }
                }
            }
            None => {}
        }
        let statement = verdict.deciding_statement().map(|s| s + 1);
        let ok = decision.outcome() == case.decision
            && decision.rule().name == case.rule
            && (case.statement.is_none() || case.statement == statement);
        if !ok {
            let explanation = Explanation::new(control, &case.sql, &session);
            let _ = writeln!(
                report,
                "case {} {:?}: expected {} by {} (statement {:?}), got {} by {} (statement \
                 {statement:?})\n{explanation}",
                i + 1,
                case.sql,
                case.decision,
                case.rule,
                case.statement,
                decision.outcome(),
                decision.rule().name,
            );
        }
        decisions.push(decision);
    }
    (report, decisions)
}

#[test]
fn corpus_decisions() {
    let corpus = corpus();
    assert!(corpus.case.len() >= 150, "{} cases", corpus.case.len());
    let control = control(&corpus.policy);

    // First pass: every evaluation is computed (and cached).
    let (report, first) = run_corpus(&control, &corpus.case);
    assert!(report.is_empty(), "corpus mismatches:\n{report}");
    // Second pass: from the cache where the text has a fingerprint, same decisions.
    let before = control.cache_stats();
    let (report, second) = run_corpus(&control, &corpus.case);
    assert!(
        report.is_empty(),
        "corpus mismatches from the cache:\n{report}"
    );
    assert_eq!(first, second);
    let after = control.cache_stats();
    assert!(
        after.hits - before.hits >= 200,
        "cache hits: {before:?} -> {after:?}"
    );

    // Every outcome is represented, and enough of each.
    let count = |d: &str| corpus.case.iter().filter(|c| c.decision == d).count();
    assert!(count("allow") >= 50 && count("deny") >= 100 && count("approval") >= 10);
}

#[test]
fn corpus_statements_classify_the_same_as_their_fingerprint() {
    // For every corpus text with a fingerprint, the text rebuilt from the fingerprint (each
    // literal replaced by 'x') has the same fingerprint and, when it parses, the same
    // classification.
    let mut checked = 0;
    for case in corpus().case {
        if let Some(checked_one) = same_as_fingerprint(&case.sql) {
            checked += usize::from(checked_one);
        }
    }
    assert!(checked >= 150, "{checked} checked");
}

/// `None`: no fingerprint; `Some(false)`: the rebuilt text does not parse; `Some(true)`:
/// checked.
fn same_as_fingerprint(sql: &str) -> Option<bool> {
    let key = fingerprint(sql)?;
    if key.as_str().contains("\u{1}\u{1}") {
        // Two literals with nothing between them: never valid SQL.
        assert!(classify(sql).is_err(), "{sql:?} parses");
        return Some(false);
    }
    let rebuilt = rebuild(&key);
    let (Ok(original), Ok(again)) = (classify(sql), classify(&rebuilt)) else {
        return Some(false);
    };
    assert_eq!(original, again, "{sql:?} vs {rebuilt:?}");
    Some(true)
}

/// A text with fingerprint `key`'s tokens, each literal being `'x'` (after a space when it
/// follows a word or `&`, so that `e?` is not read back as an `E'...'` literal).
fn rebuild(key: &Fingerprint) -> String {
    let mut out = String::with_capacity(key.len() + 8);
    for c in key.as_str().chars() {
        if c == '\u{1}' {
            if out
                .chars()
                .last()
                .is_some_and(|p| p.is_alphanumeric() || p == '_' || p == '$' || p == '&')
            {
                out.push(' ');
            }
            out.push_str("'x'");
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn texts_with_the_same_fingerprint_get_the_same_decision() {
    let control = control(&corpus().policy);
    for (a, b) in [
        (
            "SELECT * FROM orders WHERE id = 1",
            "select * from ORDERS where ID = 999 -- x",
        ),
        (
            "DELETE FROM staging.events WHERE kind = 'a'",
            "DELETE FROM staging.events WHERE kind = $$it's; DROP TABLE orders$$",
        ),
        (
            "DELETE FROM staging.events WHERE 1 = 1",
            "DELETE FROM staging.events WHERE 1 = 0",
        ),
        (
            "DELETE FROM staging.events WHERE 'a' = 'a'",
            "DELETE FROM staging.events WHERE 'a' = 'b'",
        ),
        (
            "SELECT set_config('role', 'postgres', false)",
            "SELECT set_config('application_name', 'x', false)",
        ),
        (
            "COPY staging.events TO PROGRAM 'curl x'",
            "COPY staging.events TO PROGRAM 'true'",
        ),
        ("SET search_path = 'evil'", "SET search_path = 'public'"),
        (
            "EXPLAIN (ANALYZE 'false') DELETE FROM orders",
            "EXPLAIN (ANALYZE 'true') DELETE FROM orders",
        ),
        ("SELECT E'a\\'b', 'c'", "SELECT e'x', N'y'"),
        (
            "SELECT U&'\\0041', B'101', X'ff', 1.5e3",
            "SELECT 'a', 'b', 'c', 0x10",
        ),
        ("SELECT 'a'\n'b' FROM orders", "SELECT 'ab' FROM orders"),
        (
            "DO $$ BEGIN PERFORM 1; END $$",
            "DO 'BEGIN DELETE FROM orders; END'",
        ),
    ] {
        let (ka, kb) = (fingerprint(a), fingerprint(b));
        assert!(ka.is_some(), "{a}");
        assert_eq!(ka, kb, "{a:?} vs {b:?}");
        assert_eq!(decide(&control, a), decide(&control, b), "{a:?} vs {b:?}");
        assert_eq!(classify(a).unwrap(), classify(b).unwrap(), "{a:?} vs {b:?}");
    }
}

#[test]
fn tricks_that_change_the_meaning_change_the_fingerprint() {
    for (a, b) in [
        // A comment hides nothing: the DELETE has no WHERE.
        (
            "DELETE FROM t -- WHERE id = 1",
            "DELETE FROM t WHERE id = 1",
        ),
        // Quoted names are case-sensitive.
        ("SELECT * FROM \"Orders\"", "SELECT * FROM orders"),
        // A continued E'' string swallows the rest; two standard strings do not.
        (
            "SELECT E'x'\n'\\' ; DROP TABLE t; --'",
            "SELECT 'x'\n'\\' ; DROP TABLE t; --'",
        ),
        ("SELECT 1; DROP TABLE t", "SELECT 1"),
    ] {
        assert_ne!(fingerprint(a), fingerprint(b), "{a:?} vs {b:?}");
    }
}

/// Fragments that stress the tokenizer: literal delimiters, escapes, comments, dollar
/// quotes, numbers and keywords.
const FRAGMENTS: &[&str] = &[
    "SELECT ",
    " FROM t",
    " WHERE ",
    "DELETE FROM t",
    "DROP TABLE secret",
    ";",
    " ",
    "\n",
    "\t",
    "'",
    "''",
    "\\",
    "\\'",
    "E'",
    "e'",
    "B'",
    "X'",
    "N'",
    "U&'",
    "U&\"",
    "\"",
    "\"\"",
    "$$",
    "$a$",
    "$1",
    "$",
    "--",
    "/*",
    "*/",
    "1",
    "1.5",
    ".",
    "e",
    "x",
    "id",
    "=",
    "OR",
    "true",
    ",",
    "(",
    ")",
    "-",
    "+",
    "*",
    "a",
    "0x1F",
    "1e5",
    "_",
];

prop_compose! {
    fn fragments()(parts in prop::collection::vec(prop::sample::select(FRAGMENTS), 1..24))
        -> String {
        parts.concat()
    }
}

prop_compose! {
    /// A literal with adversarial content.
    fn literal()(kind in 0..6usize, body in prop::collection::vec(prop::sample::select(FRAGMENTS), 0..6))
        -> String {
        let body = body.concat();
        match kind {
            0 => format!("'{}'", body.replace('\'', "''")),
            1 => format!("E'{}'", body.replace('\\', "\\\\").replace('\'', "\\'")),
            2 => format!("$q${}$q$", body.replace("$q$", "")),
            3 => format!("'{}'\n  '{}'", body.replace('\'', "''"), body.replace('\'', "''")),
            4 => format!("U&'{}'", body.replace('\'', "''")),
            _ => "42".to_string(),
        }
    }
}

prop_compose! {
    fn templated()(template in prop::sample::select(&[
        "SELECT {} FROM t WHERE a = {}",
        "DELETE FROM t WHERE a = {} OR b = {}",
        "INSERT INTO t VALUES ({}, {}) RETURNING *",
        "SELECT {}; DELETE FROM t WHERE id = {}",
        "UPDATE t SET a = {} WHERE b = {} -- c",
        "SELECT f({}) /* x */, {}",
    ][..]), a in literal(), b in literal()) -> String {
        template.replacen("{}", &a, 1).replacen("{}", &b, 1)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Whatever the text, its fingerprint never hides code: the text rebuilt from the
    /// fingerprint classifies exactly like the original.
    #[test]
    fn fingerprints_never_hide_code_in_random_text(sql in fragments()) {
        let _ = same_as_fingerprint(&sql);
    }

    /// Arbitrary text never panics (nor aborts) anything.
    #[test]
    fn arbitrary_text_is_judged_without_panicking(sql in any::<String>(), more in fragments()) {
        let _ = fingerprint(&sql);
        let _ = classify(&sql);
        let _ = classify(&format!("{more}{sql}"));
    }

    #[test]
    fn fingerprints_never_hide_code_in_literals(sql in templated()) {
        let checked = same_as_fingerprint(&sql);
        prop_assert!(checked.is_some(), "no fingerprint for {sql:?}");
    }
}

#[test]
fn deny_beats_approval_beats_allow() {
    let control = policy(
        "allow = [{ name = \"all\", operations = [\"read\", \"write\", \"bulk_write\"] }]\n\
         approve = [{ name = \"wait\", operations = [\"write\"], tables = [\"s.*\"] }]\n\
         deny = [{ name = \"never\", operations = [\"write\"], tables = [\"s.secret\"] }]",
    );
    assert_eq!(
        decide(&control, "INSERT INTO p.t VALUES (1)").rule().name,
        "all"
    );
    let approval = decide(&control, "INSERT INTO s.t VALUES (1)");
    assert_eq!(
        approval,
        Decision::NeedsApproval {
            rule: RuleRef {
                name: "wait".into(),
                source: approval.rule().source.clone(),
            },
            approvers: 1,
            groups: vec![],
            timeout: Duration::from_secs(600),
        }
    );
    assert!(decide(&control, "INSERT INTO s.secret VALUES (1)").is_denied());
    assert_eq!(
        decide(&control, "INSERT INTO s.secret VALUES (1)")
            .rule()
            .name,
        "never"
    );
}

#[test]
fn an_approval_rule_alone_makes_an_operation_possible() {
    let control = policy("approve = [{ name = \"ddl\", operations = [\"ddl\"] }]");
    assert!(decide(&control, "CREATE TABLE t (a int)").needs_approval());
    assert_eq!(
        decide(&control, "SELECT * FROM t").rule().name,
        "default-deny"
    );
}

#[test]
fn the_first_matching_rule_in_file_order_decides() {
    let control = policy(
        "deny = [\n  { name = \"first\", operations = [\"read\"], tables = [\"a.*\"] },\n  \
         { name = \"second\", operations = [\"read\"], tables = [\"*.t\"] },\n]",
    );
    // Both rules match a.t; `first` comes first, even for an effect found later.
    assert_eq!(
        decide(&control, "SELECT * FROM b.t, a.t").rule().name,
        "first"
    );
    assert_eq!(decide(&control, "SELECT * FROM b.t").rule().name, "second");
}

#[test]
fn unqualified_names_must_be_allowed_in_every_schema_of_the_search_path() {
    let control = policy(
        "search_path = [\"staging\", \"public\"]\n\
         allow = [{ name = \"pub\", operations = [\"read\"], tables = [\"public.*\"] }]\n\
         deny = [{ name = \"stg\", operations = [\"write\"], tables = [\"staging.*\"] }]",
    );
    // `t` could be staging.t: not allowed.
    assert_eq!(
        decide(&control, "SELECT * FROM t").rule().name,
        "default-deny"
    );
    assert!(decide(&control, "SELECT * FROM public.t").is_allowed());
    // A deny rule matches if any candidate does.
    assert_eq!(
        decide(&control, "INSERT INTO t VALUES (1)").rule().name,
        "stg"
    );
    let explained = Explanation::new(&control, "SELECT * FROM t", &NoPreparedStatements);
    assert!(
        explained
            .to_string()
            .contains("read t (as staging.t | public.t)"),
        "{explained}"
    );
}

#[test]
fn dangerous_functions_need_an_exact_allow() {
    let exact = policy("functions = { allow = [\"pg_read_file\"] }");
    assert!(decide(&exact, "SELECT pg_read_file('x')").is_allowed());
    assert!(decide(&exact, "SELECT pg_catalog.pg_read_file('x')").is_allowed());
    assert!(decide(&exact, "SELECT pg_ls_dir('x')").is_denied());
    let glob = policy("functions = { allow = [\"pg_*\"] }");
    assert_eq!(
        decide(&glob, "SELECT pg_read_file('x')").rule().name,
        "builtin:dangerous-function"
    );
    let configured = policy("functions = { deny = [\"my_schema.dangerous_fn\", \"evil_*\"] }");
    assert_eq!(
        decide(&configured, "SELECT my_schema.dangerous_fn()")
            .rule()
            .name,
        "functions.deny:my_schema.dangerous_fn"
    );
    assert_eq!(
        decide(&configured, "SELECT x.evil_twin(1)").rule().name,
        "functions.deny:evil_*"
    );
    assert!(decide(&configured, "SELECT other.dangerous_fn()").is_allowed());
}

#[test]
fn a_workload_without_access_rules_is_denied_everything() {
    let control = AccessControl::new("w", "db", None);
    for sql in ["SELECT 1", "BEGIN", "SET application_name = 'x'"] {
        let verdict = control.decide(sql, &NoPreparedStatements);
        assert_eq!(
            verdict.decision().rule().name,
            "builtin:no-access-rules",
            "{sql}"
        );
    }
    let sql_policy = SqlPolicy::new(
        &parse_sources(&[(
            PathBuf::from("p.toml"),
            "[[workload]]\nname = \"w\"\ntargets = [\"db\", \"cache\"]\n[[target]]\n\
             name = \"db\"\nprotocol = \"postgres\"\naddresses = [\"10.0.0.1:5432\"]\n\
             [target.credentials]\nusername = \"u\"\npassword = { env = \"PW\" }\n\
             [[target]]\nname = \"cache\"\nprotocol = \"tcp\"\naddresses = [\"10.0.0.2:6379\"]\n"
                .to_string(),
        )])
        .unwrap(),
    );
    let db = sql_policy.access("w", "db").unwrap();
    assert!(db.access().is_none());
    assert!(
        db.decide("SELECT 1", &NoPreparedStatements)
            .decision()
            .is_denied()
    );
    assert!(sql_policy.access("w", "cache").is_none());
    assert!(sql_policy.access("x", "db").is_none());
}

#[test]
fn a_denial_carries_the_error_response_fields() {
    let control = control(&corpus().policy);
    let verdict = control.decide("SELECT 1; DELETE FROM orders", &NoPreparedStatements);
    let denial = verdict.denial().unwrap();
    assert_eq!(denial.severity, "ERROR");
    assert_eq!(denial.sqlstate, "42501");
    assert_eq!(
        denial.message,
        "permission denied by policy: `write` on `orders` (as `public.orders`) is not allowed \
         for workload `nightly-chunker` on target `orders-db` (no allow rule matches)"
    );
    assert_eq!(
        denial.detail,
        "Denied by rule default-deny (p.toml:5). Statement 2 of 2 is denied, so none of them \
         was run."
    );
    assert_eq!(
        denial.hint,
        "to allow it, add { operations = [\"write\"], tables = [\"public.orders\"] } to `allow` \
         in the [[workload.access]] for target `orders-db` (p.toml:5)"
    );
    let denial = control
        .decide("SELECT * FROM audit.log", &NoPreparedStatements)
        .denial()
        .unwrap();
    assert_eq!(
        denial.message,
        "permission denied by policy: `read` on `audit.log` (audit tables belong to the \
         application)"
    );
    assert!(
        denial
            .detail
            .starts_with("Denied by rule no-audit (p.toml:"),
        "{denial:?}"
    );
    assert!(
        control
            .decide("SELECT 1", &NoPreparedStatements)
            .denial()
            .is_none()
    );
}

#[test]
fn function_call_messages_are_denied() {
    let control = control(&corpus().policy);
    let decision = control.function_call();
    assert!(decision.is_denied());
    assert_eq!(decision.rule().name, "builtin:function-call");
}

#[test]
fn prepared_statement_changes_are_reported_in_order() {
    let control = control(&corpus().policy);
    let verdict = control.decide(
        "PREPARE a AS SELECT 1; PREPARE b AS DELETE FROM staging.events; DEALLOCATE a; \
         DISCARD ALL",
        &NoPreparedStatements,
    );
    let changes: Vec<(Option<&str>, Option<&str>)> = verdict
        .prepared_changes()
        .into_iter()
        .map(|(name, d)| (name, d.map(Decision::outcome)))
        .collect();
    assert_eq!(
        changes,
        [
            (Some("a"), Some("allow")),
            (Some("b"), Some("approval")),
            (Some("a"), None),
            (None, None)
        ]
    );
}

#[test]
fn hot_statements_are_parsed_once() {
    let control = control(&corpus().policy);
    let first = control.decide("SELECT * FROM orders WHERE id = 1", &NoPreparedStatements);
    assert!(!first.was_cached());
    for id in 2..100 {
        let sql = format!("SELECT * FROM orders WHERE id = {id}");
        let verdict = control.decide(&sql, &NoPreparedStatements);
        assert!(verdict.was_cached());
        assert_eq!(verdict.decision(), first.decision());
    }
    let stats = control.cache_stats();
    assert_eq!((stats.hits, stats.misses, stats.entries), (98, 1, 1));
    // Unparseable texts are not cached; texts without a fingerprint are never cached.
    control.decide("SELEC 1", &NoPreparedStatements);
    control.decide("SELECT U&'x' UESCAPE '!'", &NoPreparedStatements);
    assert_eq!(control.cache_stats().entries, 1);
}

#[test]
fn execute_is_resolved_against_the_session_even_from_the_cache() {
    let control = control(&corpus().policy);
    let mut session: HashMap<String, Decision> = HashMap::new();
    assert!(control.decide("EXECUTE p", &session).decision().is_denied());
    session.insert(
        "p".into(),
        control
            .decide("SELECT * FROM orders", &NoPreparedStatements)
            .decision_to_remember(),
    );
    let verdict = control.decide("EXECUTE p", &session);
    assert!(verdict.was_cached());
    assert_eq!(verdict.decision().rule().name, "read-orders");
}

#[test]
fn explain_shows_classification_and_decision() {
    let control = control(&corpus().policy);
    let text = Explanation::new(
        &control,
        "UPDATE staging.events SET kind = 'x' WHERE id = 1;\nDELETE FROM staging.events",
        &NoPreparedStatements,
    )
    .to_string();
    for expected in [
        "workload     nightly-chunker",
        "target       orders-db",
        "fingerprint  update staging.events set kind = ? where id = ?; delete from staging.events",
        "statement 1 of 2: UPDATE staging.events SET kind = 'x' WHERE id = 1",
        "  kind       UPDATE",
        "  effect     write staging.events",
        "allowed by stage (p.toml:",
        "statement 2 of 2: DELETE FROM staging.events",
        "needs approval: bulk-staging (p.toml:",
        "  flags      bulk write",
        "decision: NEEDS APPROVAL by bulk-staging (p.toml:22): 1 approver from dba within 10m \
         (statement 2)",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    let denied = Explanation::new(&control, "DROP TABLE orders", &NoPreparedStatements);
    let text = denied.to_string();
    assert!(text.contains("not allowed by any rule"), "{text}");
    assert!(text.contains("hint: to allow it, add"), "{text}");
    let garbage = Explanation::new(&control, "SELEC 1", &NoPreparedStatements).to_string();
    assert!(garbage.contains("DENY by builtin:unparseable"), "{garbage}");
}

#[test]
fn classification_display_is_readable() {
    let c = classify("DELETE FROM staging.events WHERE now() > '2020-01-01'")
        .unwrap()
        .remove(0);
    assert_eq!(
        c.to_string(),
        "kind       DELETE\neffects    write staging.events, bulk_write staging.events\n\
         functions  now()\nflags      bulk\n"
    );
}

#[test]
fn access_controls_are_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<AccessControl>();
    shared::<SqlPolicy>();
    shared::<Verdict>();
}

#[test]
fn repo_example_policies_decide_as_documented() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let set = crate::policy::load_dir(&dir).unwrap_or_else(|e| panic!("{e}"));
    let sql = SqlPolicy::new(&set);
    let chunker = sql.access("nightly-chunker", "orders-db").unwrap();
    let outcome = |sql: &str| {
        let d = chunker
            .decide(sql, &NoPreparedStatements)
            .decision()
            .clone();
        (d.outcome(), d.rule().name.clone())
    };
    // The statements of docs/policy-reference.md, section Example.
    assert_eq!(
        outcome("DELETE FROM staging.chunks WHERE chunk_id = 7"),
        ("allow", "stage".into())
    );
    assert_eq!(
        outcome("DELETE FROM staging.chunks"),
        ("approval", "bulk-staging".into())
    );
    assert_eq!(
        outcome("SELECT * FROM audit.log"),
        ("deny", "no-audit".into())
    );
    assert_eq!(
        outcome("UPDATE orders SET total = 0 WHERE id = 1"),
        ("deny", "default-deny".into())
    );
    assert_eq!(
        outcome("SELECT 1; DROP TABLE orders"),
        ("deny", "default-deny".into())
    );
    let reports = sql.access("monthly-reports", "reporting-db").unwrap();
    let d = reports.decide(
        "COPY (SELECT * FROM sales) TO STDOUT",
        &NoPreparedStatements,
    );
    assert_eq!(d.decision().rule().name, "reports");
    let d = reports.decide("DELETE FROM sales WHERE id = 1", &NoPreparedStatements);
    assert!(d.decision().is_denied());
}
