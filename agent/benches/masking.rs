//! Masking throughput on realistic 5-column rows (id, name, e-mail, card number, free-text
//! note), per row and in MB/s of DataRow body:
//!
//! - `passthrough`: no rule (the plan forwards rows as they are);
//! - `partial_column`: one column rule (`partial`, keep last 4) on the card number;
//! - `hash_column`: one column rule (`hash`) on the e-mail;
//! - `detectors_all_columns`: a content rule with every detector on every text column (rows
//!   with an e-mail address and a card number to find), and the same on rows with nothing
//!   to find (`detectors_clean_rows`);
//! - `copy_text_stream`: a `COPY ... TO STDOUT` text stream, 1000 rows, one CopyData per row,
//!   with the column rules and the content rule.
//!
//! `cargo bench -p agent --bench masking -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use chunk_agent::mask::detectors;
use chunk_agent::mask::{
    CatalogNames, CopyFormat, CopyMasker, MaskCounts, MaskPlan, MaskRules, mask_row,
};
use chunk_agent::pg::codec::backend::{DataRow, FieldDescription, RowDescription};
use chunk_agent::policy::{Detector, Masking, parse_sources};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const CUSTOMERS: u32 = 16384;

/// A policy whose `mask` table is `{MASK}`.
const POLICY: &str = r#"
[[workload]]
name = "bench"
targets = ["db"]

[[workload.access]]
target = "db"
masking_key = { env = "MASK_KEY" }
{MASK}

[[target]]
name = "db"
protocol = "postgres"
addresses = ["127.0.0.1:5432"]

[target.credentials]
username = "bench"
password = { env = "PW" }
"#;

fn masking(mask: &str) -> Masking {
    let text = POLICY.replace("{MASK}", mask);
    let set = parse_sources(&[(PathBuf::from("bench.toml"), text)]).unwrap();
    set.workloads[0].access[0].masking.clone()
}

fn rules(mask: &str) -> Arc<MaskRules> {
    Arc::new(MaskRules::new(&masking(mask), Some(b"bench masking key, 32 bytes long")).unwrap())
}

fn row_description() -> RowDescription {
    let column = |name: &str, attnum: i16, type_oid: u32| FieldDescription {
        table_oid: CUSTOMERS,
        column_attr: attnum,
        ..FieldDescription::text(name, type_oid)
    };
    RowDescription {
        fields: vec![
            column("id", 1, 23),
            column("name", 2, 25),
            column("email", 3, 1043),
            column("card_number", 4, 25),
            column("note", 5, 25),
        ],
    }
}

fn catalog() -> CatalogNames {
    let mut c = CatalogNames::new();
    for (attnum, name) in [
        (1, "id"),
        (2, "name"),
        (3, "email"),
        (4, "card_number"),
        (5, "note"),
    ] {
        c.insert(CUSTOMERS, "public", "customers", Some((attnum, name)));
    }
    c
}

fn plan(rules: &Arc<MaskRules>) -> MaskPlan {
    MaskPlan::for_row_description(&row_description(), &[], &catalog(), rules).unwrap()
}

/// The text values of row `i`; `findings`: whether the note quotes an e-mail and a card.
fn values(i: usize, findings: bool) -> [String; 5] {
    let note = if findings {
        format!(
            "Order {i} shipped to 12 rue de la Paix, Paris. Customer asked to use \
             a{i}@example.org; paid with 4111 1111 1111 1111."
        )
    } else {
        format!(
            "Order {i} shipped to 12 rue de la Paix, Paris, 75002. Customer asked for a \
             delivery before noon; paid by transfer, ref 2024-{i:06}."
        )
    };
    [
        (100_000 + i).to_string(),
        format!("Alice Martin-{i}"),
        format!("alice.martin{i}@example.com"),
        "4111111111111111".to_string(),
        note,
    ]
}

fn row(i: usize, findings: bool) -> DataRow {
    let v = values(i, findings);
    DataRow::from_values(v.iter().map(|s| Some(s.as_bytes()))).unwrap()
}

fn bench_rows(c: &mut Criterion) {
    let cases: [(&str, &str, bool); 5] = [
        ("passthrough", "", true),
        (
            "partial_column",
            r#"mask = [{ name = "cards", columns = ["public.customers.card_number"], strategy = "partial", keep_last = 4 }]"#,
            true,
        ),
        (
            "hash_column",
            r#"mask = [{ name = "emails", columns = ["public.customers.email"], strategy = "hash" }]"#,
            true,
        ),
        (
            "detectors_all_columns",
            r#"mask = [{ name = "pii", detectors = ["card", "email", "ssn", "phone", "iban", "jwt", "api_key"], strategy = "redact" }]"#,
            true,
        ),
        (
            "detectors_clean_rows",
            r#"mask = [{ name = "pii", detectors = ["card", "email", "ssn", "phone", "iban", "jwt", "api_key"], strategy = "redact" }]"#,
            false,
        ),
    ];
    let mut group = c.benchmark_group("mask_row");
    for (name, mask, findings) in cases {
        let rules = rules(mask);
        let plan = plan(&rules);
        let rows: Vec<DataRow> = (0..64).map(|i| row(i, findings)).collect();
        let bytes: usize = rows.iter().map(|r| r.body().len()).sum::<usize>() / rows.len();
        group.throughput(Throughput::Bytes(bytes as u64));
        let mut counts = MaskCounts::new();
        let mut i = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) % rows.len();
                black_box(mask_row(&plan, black_box(&rows[i]), &mut counts).unwrap())
            })
        });
    }
    group.finish();
}

fn bench_copy(c: &mut Criterion) {
    let rules = rules(
        r#"mask = [
    { name = "cards", columns = ["public.customers.card_number"], strategy = "partial", keep_last = 4 },
    { name = "pii", detectors = ["card", "email", "ssn", "phone", "iban", "jwt", "api_key"], strategy = "redact" },
]"#,
    );
    let plan = plan(&rules);
    let lines: Vec<Bytes> = (0..1000)
        .map(|i| Bytes::from(values(i, i % 2 == 0).join("\t") + "\n"))
        .collect();
    let total: usize = lines.iter().map(Bytes::len).sum();
    let mut group = c.benchmark_group("copy");
    group.throughput(Throughput::Bytes(total as u64));
    group.bench_function("copy_text_stream_1000_rows", |b| {
        b.iter(|| {
            let mut m = CopyMasker::new(plan.clone(), CopyFormat::text());
            let mut counts = MaskCounts::new();
            for line in &lines {
                black_box(m.push(line.clone(), &mut counts).unwrap());
            }
            m.finish().unwrap();
            counts
        })
    });
    group.finish();
}

/// Each detector alone on a clean 5-column row's text (what the content rule scans).
fn bench_detectors(c: &mut Criterion) {
    let text = values(7, false)[1..].join(" ");
    let mut group = c.benchmark_group("detector");
    group.throughput(Throughput::Bytes(text.len() as u64));
    let mut out = Vec::new();
    for d in Detector::ALL {
        group.bench_function(d.as_str(), |b| {
            b.iter(|| {
                out.clear();
                detectors::find(d, black_box(text.as_bytes()), &mut out);
                out.len()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_rows, bench_copy, bench_detectors);
criterion_main!(benches);
