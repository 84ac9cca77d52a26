//! Cost of an SQL decision, per statement: the fingerprint (cache key) alone, libpg_query's
//! parse alone, parse + classification, a full uncached decision, and a cached decision
//! (fingerprint + cache hit).
//!
//! `cargo bench -p agent --bench sql_decision -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::path::PathBuf;

use chunk_agent::policy::parse_sources;
use chunk_agent::sql::{AccessControl, NoPreparedStatements, classify, fingerprint};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

const POLICY: &str = r#"
[[workload]]
name = "bench"
targets = ["db"]

[[workload.access]]
target = "db"
allow = [
    { name = "catalogs", operations = ["read"], tables = ["pg_catalog.*"] },
    { name = "app", operations = ["read", "write"], tables = ["public.*"] },
]
deny = [
    { name = "no-audit", operations = ["read", "write", "ddl"], tables = ["*.audit_*"] },
]
approve = [
    { name = "bulk", operations = ["bulk_write"], tables = ["public.*"] },
]

[[target]]
name = "db"
protocol = "postgres"
addresses = ["127.0.0.1:5432"]

[target.credentials]
username = "bench"
password = { env = "PW" }
"#;

/// (name, SQL): representative statements.
const STATEMENTS: &[(&str, &str)] = &[
    (
        "select_by_id",
        "SELECT abalance FROM pgbench_accounts WHERE aid = 4242",
    ),
    (
        "tpcb_update",
        "UPDATE pgbench_accounts SET abalance = abalance + -1234 WHERE aid = 4242",
    ),
    (
        "join_3_way",
        "SELECT c.name, o.id, sum(l.amount) AS total FROM customers c \
         JOIN orders o ON o.customer_id = c.id JOIN order_lines l ON l.order_id = o.id \
         WHERE c.id = 42 AND o.created_at > now() - interval '7 days' \
         GROUP BY c.name, o.id ORDER BY o.id",
    ),
    (
        "tpcb_multi_statement",
        "BEGIN; UPDATE pgbench_accounts SET abalance = abalance + 10 WHERE aid = 1; \
         SELECT abalance FROM pgbench_accounts WHERE aid = 1; \
         UPDATE pgbench_tellers SET tbalance = tbalance + 10 WHERE tid = 1; \
         UPDATE pgbench_branches SET bbalance = bbalance + 10 WHERE bid = 1; \
         INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) \
         VALUES (1, 1, 1, 10, CURRENT_TIMESTAMP); END;",
    ),
];

fn control() -> AccessControl {
    let set = parse_sources(&[(PathBuf::from("bench.toml"), POLICY.to_string())])
        .unwrap_or_else(|e| panic!("{e}"));
    let w = &set.workloads[0];
    AccessControl::new(&w.name, "db", w.access_for("db"))
}

fn bench(c: &mut Criterion) {
    let control = control();
    for (_, sql) in STATEMENTS {
        let verdict = control.decide_uncached(sql, &NoPreparedStatements);
        assert!(
            verdict.decision().is_allowed(),
            "{sql}: {}",
            verdict.decision()
        );
    }

    let mut group = c.benchmark_group("fingerprint");
    for (name, sql) in STATEMENTS {
        group.bench_with_input(BenchmarkId::from_parameter(name), sql, |b, sql| {
            b.iter(|| fingerprint(black_box(sql)))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("pg_query_parse");
    for (name, sql) in STATEMENTS {
        group.bench_with_input(BenchmarkId::from_parameter(name), sql, |b, sql| {
            b.iter(|| pg_query::parse(black_box(sql), pg_query::ParserOptions::DEFAULT))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("parse_classify");
    for (name, sql) in STATEMENTS {
        group.bench_with_input(BenchmarkId::from_parameter(name), sql, |b, sql| {
            b.iter(|| classify(black_box(sql)))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("decide_uncached");
    for (name, sql) in STATEMENTS {
        group.bench_with_input(BenchmarkId::from_parameter(name), sql, |b, sql| {
            b.iter(|| control.decide_uncached(black_box(sql), &NoPreparedStatements))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("decide_cached");
    for (name, sql) in STATEMENTS {
        control.decide(sql, &NoPreparedStatements);
        group.bench_with_input(BenchmarkId::from_parameter(name), sql, |b, sql| {
            b.iter(|| {
                let verdict = control.decide(black_box(sql), &NoPreparedStatements);
                debug_assert!(verdict.was_cached());
                verdict
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
