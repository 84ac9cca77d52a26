//! Tests of the whole policy layer: files in, `PolicySet` or positioned errors out.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::*;

const WORKLOAD: &str = r#"[[workload]]
name = "nightly-chunker"
description = "Nightly batch"
cgroups = ["/chunk-jobs/nightly/*", "/system.slice/nightly-chunker.service"]
targets = ["orders-db"]
"#;

const TARGET: &str = r#"[[target]]
name = "orders-db"
protocol = "postgres"
addresses = ["127.0.0.1:5432", "[::1]:5432"]

[target.credentials]
username = "chunker"
password = { file = "/etc/chunk-agent/secrets/orders-db.password" }
"#;

fn sources(files: &[(&str, &str)]) -> Vec<(PathBuf, String)> {
    files
        .iter()
        .map(|(name, text)| (PathBuf::from(name), text.to_string()))
        .collect()
}

fn parse(files: &[(&str, &str)]) -> Result<PolicySet, PolicyErrors> {
    parse_sources(&sources(files))
}

fn parse_ok(files: &[(&str, &str)]) -> PolicySet {
    parse(files).unwrap_or_else(|e| panic!("expected success, got:\n{e}"))
}

fn errors(files: &[(&str, &str)]) -> Vec<PolicyError> {
    match parse(files) {
        Ok(set) => panic!("expected errors, got {set:?}"),
        Err(e) => e.0,
    }
}

/// The only error, checked to be at `file:line:column` and to contain `needle`.
fn only_error(files: &[(&str, &str)], at: (&str, usize, usize), needle: &str) -> PolicyError {
    let errors = errors(files);
    assert_eq!(errors.len(), 1, "expected one error, got {errors:#?}");
    let e = errors.into_iter().next().unwrap();
    assert_eq!(
        (e.file.as_path(), e.line, e.column),
        (Path::new(at.0), at.1, at.2),
        "wrong position for: {e}"
    );
    assert!(e.message.contains(needle), "`{needle}` not in: {e}");
    e
}

/// A target file with the given `addresses = ...` value.
fn target_with_addresses(addresses: &str) -> String {
    format!("[[target]]\nname = \"t\"\nprotocol = \"tcp\"\naddresses = {addresses}\n")
}

fn workload_with_cgroups(cgroups: &str) -> String {
    format!("[[workload]]\nname = \"w\"\ncgroups = {cgroups}\ntargets = [\"orders-db\"]\n")
}

#[test]
fn valid_example_parses() {
    let set = parse_ok(&[("nightly.toml", WORKLOAD), ("orders.toml", TARGET)]);
    assert_eq!(set.summary(), "1 workload, 1 target");

    let w = set.workload("nightly-chunker").unwrap();
    assert_eq!(w.description.as_deref(), Some("Nightly batch"));
    let patterns: Vec<&str> = w.cgroups.iter().map(CgroupPattern::as_str).collect();
    assert_eq!(
        patterns,
        [
            "/chunk-jobs/nightly/*",
            "/system.slice/nightly-chunker.service"
        ]
    );
    assert_eq!(w.targets, ["orders-db"]);
    assert_eq!(
        w.source,
        SourceLocation {
            file: "nightly.toml".into(),
            line: 1
        }
    );

    let t = set.target("orders-db").unwrap();
    assert_eq!(t.protocol, Protocol::Postgres);
    assert_eq!(t.protocol.to_string(), "postgres");
    let expected: Vec<SocketAddr> = vec![
        "127.0.0.1:5432".parse().unwrap(),
        "[::1]:5432".parse().unwrap(),
    ];
    assert_eq!(t.addresses, expected);
    assert_eq!(
        t.credentials,
        Some(Credentials {
            username: "chunker".into(),
            password: SecretRef::File("/etc/chunk-agent/secrets/orders-db.password".into()),
        })
    );
    assert_eq!(t.source.to_string(), "orders.toml:1");
    assert!(set.workload("nope").is_none());
    assert!(set.target("nope").is_none());
}

#[test]
fn workloads_and_targets_may_share_one_file_in_source_order() {
    let text = format!(
        "{TARGET}\n{WORKLOAD}\n[[target]]\nname = \"other\"\nprotocol = \"tcp\"\naddresses = [\"10.0.0.1:6379\"]\n"
    );
    let set = parse_ok(&[("all.toml", &text)]);
    assert_eq!(set.summary(), "1 workload, 2 targets");
    let names: Vec<&str> = set.targets.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["orders-db", "other"]);
    assert_eq!(set.target("other").unwrap().protocol, Protocol::Tcp);
    assert!(set.target("other").unwrap().credentials.is_none());
    assert_eq!(set.workloads[0].source.line, 10);
}

#[test]
fn repo_example_policies_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let set = load_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    assert!(set.workload("nightly-chunker").is_some());
    assert_eq!(
        set.target("orders-db").map(|t| t.protocol),
        Some(Protocol::Postgres)
    );
    assert_eq!(
        set.workloads_for_cgroup("/chunk-jobs/nightly/run-1").len(),
        1
    );
}

#[test]
fn cgroups_and_description_are_optional() {
    let text = "[[workload]]\nname = \"adhoc\"\ntargets = [\"orders-db\"]\n";
    let set = parse_ok(&[("w.toml", text), ("t.toml", TARGET)]);
    let w = set.workload("adhoc").unwrap();
    assert!(w.cgroups.is_empty());
    assert!(w.description.is_none());
    assert!(set.workloads_for_cgroup("/chunk-jobs/nightly/x").is_empty());
}

#[test]
fn unknown_field_is_refused_with_its_line() {
    let text = "[[workload]]\nname = \"w\"\ntargets = [\"orders-db\"]\n  colour = \"red\"\n";
    only_error(
        &[("w.toml", text), ("t.toml", TARGET)],
        ("w.toml", 4, 3),
        "unknown field `colour`",
    );
}

#[test]
fn unknown_top_level_table_is_refused() {
    only_error(
        &[("x.toml", "[[workloads]]\nname = \"w\"\n")],
        ("x.toml", 1, 3),
        "unknown field `workloads`",
    );
}

#[test]
fn single_brackets_table_gets_a_hint() {
    only_error(
        &[("x.toml", "# hi\n[target]\nname = \"t\"\n")],
        ("x.toml", 2, 1),
        "write `[[target]]` (an array of tables), not `[target]`",
    );
}

#[test]
fn syntax_error_reports_its_line() {
    let text = "[[target]]\nname = \"t\"\nprotocol = tcp\n";
    let e = only_error(&[("t.toml", text)], ("t.toml", 3, 12), "");
    assert!(!e.message.is_empty());
    assert!(!e.message.contains('\n'), "one-line message: {e}");
}

#[test]
fn type_error_points_at_the_value() {
    let text = "[[target]]\nname = 42\nprotocol = \"tcp\"\naddresses = [\"10.0.0.1:1\"]\n";
    only_error(&[("t.toml", text)], ("t.toml", 2, 8), "expected a string");
}

#[test]
fn missing_required_field_points_at_the_table() {
    let text = "\n[[target]]\nname = \"t\"\nprotocol = \"tcp\"\n";
    only_error(
        &[("t.toml", text)],
        ("t.toml", 2, 1),
        "missing field `addresses`",
    );
}

#[test]
fn unknown_protocol_is_refused() {
    let text = "[[target]]\nname = \"t\"\nprotocol = \"mysql\"\naddresses = [\"10.0.0.1:3306\"]\n";
    only_error(
        &[("t.toml", text)],
        ("t.toml", 3, 12),
        "`postgres` or `tcp`",
    );
}

#[test]
fn invalid_names_are_refused() {
    let text =
        "[[target]]\nname = \"Orders.DB\"\nprotocol = \"tcp\"\naddresses = [\"10.0.0.1:1\"]\n";
    only_error(
        &[("t.toml", text)],
        ("t.toml", 2, 8),
        "invalid target name `Orders.DB`",
    );
    let long = format!(
        "[[workload]]\nname = \"{}\"\ntargets = [\"orders-db\"]\n",
        "w".repeat(49)
    );
    only_error(
        &[("t.toml", TARGET), ("w.toml", &long)],
        ("w.toml", 2, 8),
        "invalid workload name",
    );
}

#[test]
fn duplicate_workload_across_two_files_names_both_places() {
    let other = format!("# second definition\n\n{WORKLOAD}");
    let e = only_error(
        &[("a.toml", WORKLOAD), ("b.toml", &other), ("t.toml", TARGET)],
        ("b.toml", 4, 8),
        "workload `nightly-chunker` is already defined at a.toml:1",
    );
    assert_eq!(
        e.to_string(),
        "b.toml:4:8: workload `nightly-chunker` is already defined at a.toml:1"
    );
}

#[test]
fn duplicate_target_names_where_the_first_is() {
    let other =
        "[[target]]\nname = \"orders-db\"\nprotocol = \"tcp\"\naddresses = [\"10.0.0.9:5432\"]\n";
    only_error(
        &[("a.toml", TARGET), ("other.toml", other)],
        ("other.toml", 2, 8),
        "target `orders-db` is already defined at a.toml:1",
    );
}

#[test]
fn a_workload_and_a_target_may_share_a_name() {
    let text = "[[workload]]\nname = \"orders-db\"\ntargets = [\"orders-db\"]\n";
    parse_ok(&[("t.toml", TARGET), ("w.toml", text)]);
}

#[test]
fn unknown_target_reference_is_refused_at_the_reference() {
    let text = "[[workload]]\nname = \"w\"\ntargets = [\"orders-db\", \"billing-db\"]\n";
    only_error(
        &[("t.toml", TARGET), ("w.toml", text)],
        ("w.toml", 3, 25),
        "unknown target `billing-db` (defined targets: `orders-db`)",
    );
}

#[test]
fn unknown_target_is_not_reported_when_another_file_failed_to_parse() {
    let broken = "[[target]]\nname = \"orders-db\"\nprotocol = \"postgres\"\naddresses = [\n";
    let errors = errors(&[("t.toml", broken), ("w.toml", WORKLOAD)]);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].file, Path::new("t.toml"));
}

#[test]
fn empty_and_duplicate_target_references_are_refused() {
    let empty = "[[workload]]\nname = \"w\"\ntargets = []\n";
    only_error(
        &[("t.toml", TARGET), ("w.toml", empty)],
        ("w.toml", 3, 11),
        "has no targets",
    );
    let twice = "[[workload]]\nname = \"w\"\ntargets = [\"orders-db\", \"orders-db\"]\n";
    only_error(
        &[("t.toml", TARGET), ("w.toml", twice)],
        ("w.toml", 3, 25),
        "listed twice",
    );
}

#[test]
fn hostname_address_is_refused() {
    let text = target_with_addresses(r#"["10.0.0.1:5432", "db.internal:5432"]"#);
    only_error(
        &[("t.toml", &text)],
        ("t.toml", 4, 31),
        "hostnames are not allowed",
    );
}

#[test]
fn port_zero_is_refused() {
    let text = target_with_addresses(r#"["10.0.0.1:0"]"#);
    only_error(&[("t.toml", &text)], ("t.toml", 4, 14), "port 0");
}

#[test]
fn unspecified_addresses_are_refused() {
    let text = target_with_addresses(r#"["0.0.0.0:5432"]"#);
    only_error(&[("t.toml", &text)], ("t.toml", 4, 14), "unspecified");
    let text = target_with_addresses(r#"["[::]:5432"]"#);
    only_error(&[("t.toml", &text)], ("t.toml", 4, 14), "unspecified");
}

#[test]
fn address_without_port_is_refused() {
    let text = target_with_addresses(r#"["10.0.0.1"]"#);
    only_error(&[("t.toml", &text)], ("t.toml", 4, 14), "has no port");
}

#[test]
fn empty_address_list_is_refused() {
    let text = target_with_addresses("[]");
    only_error(&[("t.toml", &text)], ("t.toml", 4, 13), "has no addresses");
}

#[test]
fn an_address_belongs_to_only_one_target() {
    let other = "[[target]]\nname = \"replica\"\nprotocol = \"postgres\"\naddresses = [\"[::ffff:127.0.0.1]:5432\"]\n";
    only_error(
        &[("a.toml", TARGET), ("b.toml", other)],
        ("b.toml", 4, 14),
        "already belongs to target `orders-db` (a.toml:4)",
    );
    let twice = target_with_addresses(r#"["10.0.0.1:1", "10.0.0.1:1"]"#);
    only_error(&[("t.toml", &twice)], ("t.toml", 4, 28), "listed twice");
}

#[test]
fn v4_mapped_address_lookup() {
    let mapped_target = "[[target]]\nname = \"mapped\"\nprotocol = \"tcp\"\naddresses = [\"[::ffff:10.0.0.7]:6379\"]\n";
    let set = parse_ok(&[("a.toml", TARGET), ("b.toml", mapped_target)]);
    let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
    assert_eq!(set.target_index_by_addr(addr("127.0.0.1:5432")), Some(0));
    assert_eq!(
        set.target_index_by_addr(addr("[::ffff:127.0.0.1]:5432")),
        Some(0)
    );
    assert_eq!(set.target_index_by_addr(addr("[::1]:5432")), Some(0));
    assert_eq!(set.target_index_by_addr(addr("10.0.0.7:6379")), Some(1));
    assert_eq!(
        set.target_index_by_addr(addr("[::ffff:10.0.0.7]:6379")),
        Some(1)
    );
    assert_eq!(set.target_index_by_addr(addr("127.0.0.1:5433")), None);
    assert_eq!(set.target_index_by_addr(addr("10.0.0.7:5432")), None);
    assert_eq!(
        normalize_addr(addr("[::ffff:1.2.3.4]:9")),
        addr("1.2.3.4:9")
    );
    assert_eq!(normalize_addr(addr("[::1]:9")), addr("[::1]:9"));
}

#[test]
fn root_pattern_is_refused_with_its_position() {
    let text = workload_with_cgroups(r#"["/chunk-jobs/a", "/"]"#);
    only_error(
        &[("t.toml", TARGET), ("w.toml", &text)],
        ("w.toml", 3, 29),
        "every process on the host",
    );
}

#[test]
fn double_star_pattern_is_refused() {
    let text = workload_with_cgroups(r#"["/chunk-jobs/**"]"#);
    only_error(
        &[("t.toml", TARGET), ("w.toml", &text)],
        ("w.toml", 3, 12),
        "`**`",
    );
}

#[test]
fn relative_pattern_is_refused() {
    let text = workload_with_cgroups(r#"["chunk-jobs/nightly"]"#);
    only_error(
        &[("t.toml", TARGET), ("w.toml", &text)],
        ("w.toml", 3, 12),
        "absolute",
    );
}

#[test]
fn dot_dot_pattern_is_refused() {
    let text = workload_with_cgroups(r#"["/chunk-jobs/../system.slice"]"#);
    only_error(
        &[("t.toml", TARGET), ("w.toml", &text)],
        ("w.toml", 3, 12),
        "`..`",
    );
}

#[test]
fn the_same_pattern_in_two_workloads_is_refused() {
    let second = "[[workload]]\nname = \"w2\"\ncgroups = [\"/chunk-jobs/nightly/*\"]\ntargets = [\"orders-db\"]\n";
    only_error(
        &[("a.toml", WORKLOAD), ("b.toml", second), ("t.toml", TARGET)],
        ("b.toml", 3, 12),
        "already used by workload `nightly-chunker` (a.toml:4)",
    );
}

#[test]
fn inline_password_is_refused_with_its_line() {
    let text = TARGET.replace(
        r#"{ file = "/etc/chunk-agent/secrets/orders-db.password" }"#,
        r#""hunter2""#,
    );
    let e = only_error(
        &[("t.toml", &text)],
        ("t.toml", 8, 12),
        r#"inline secrets are not allowed: use password = { file = "..." } or { env = "..." }"#,
    );
    assert!(!e.message.contains("hunter2"));
}

#[test]
fn env_secret_reference_is_accepted() {
    let text = TARGET.replace(
        r#"{ file = "/etc/chunk-agent/secrets/orders-db.password" }"#,
        r#"{ env = "ORDERS_DB_PASSWORD" }"#,
    );
    let set = parse_ok(&[("t.toml", &text)]);
    let password = &set.targets[0].credentials.as_ref().unwrap().password;
    assert_eq!(password, &SecretRef::Env("ORDERS_DB_PASSWORD".into()));
    assert_eq!(password.to_string(), "env:ORDERS_DB_PASSWORD");
}

#[test]
fn secret_reference_needs_exactly_one_of_file_or_env() {
    let with = |value: &str| {
        TARGET.replace(
            r#"{ file = "/etc/chunk-agent/secrets/orders-db.password" }"#,
            value,
        )
    };
    let both = with(r#"{ file = "/run/pw", env = "PW" }"#);
    only_error(&[("t.toml", &both)], ("t.toml", 8, 12), "not both");
    let neither = with("{}");
    only_error(&[("t.toml", &neither)], ("t.toml", 8, 12), "exactly one of");
    let unknown = with(r#"{ vault = "kv/orders" }"#);
    only_error(
        &[("t.toml", &unknown)],
        ("t.toml", 8, 14),
        "unknown field `vault`",
    );
    let number = with("42");
    only_error(
        &[("t.toml", &number)],
        ("t.toml", 8, 12),
        "a secret reference",
    );
}

#[test]
fn secret_file_must_be_absolute_and_env_name_valid() {
    let with = |value: &str| {
        TARGET.replace(
            r#"{ file = "/etc/chunk-agent/secrets/orders-db.password" }"#,
            value,
        )
    };
    let relative = with(r#"{ file = "secrets/pw" }"#);
    only_error(
        &[("t.toml", &relative)],
        ("t.toml", 8, 21),
        "must be absolute",
    );
    let bad_env = with(r#"{ env = "ORDERS-PW" }"#);
    only_error(
        &[("t.toml", &bad_env)],
        ("t.toml", 8, 20),
        "invalid environment variable name `ORDERS-PW`",
    );
}

#[test]
fn empty_username_is_refused() {
    let text = TARGET.replace("username = \"chunker\"", "username = \"\"");
    only_error(
        &[("t.toml", &text)],
        ("t.toml", 7, 12),
        "username must not be empty",
    );
}

#[test]
fn all_errors_are_collected_across_files() {
    let bad_syntax = "[[target]]\nname = \"x\"\nprotocol = \n";
    let bad_target =
        "[[target]]\nname = \"y\"\nprotocol = \"tcp\"\naddresses = [\"0.0.0.0:1\", \"h:2\"]\n";
    let bad_workload = "[[workload]]\nname = \"Bad\"\ncgroups = [\"/\"]\ntargets = []\n";
    let errors = errors(&[
        ("a.toml", bad_syntax),
        ("b.toml", bad_target),
        ("c.toml", bad_workload),
    ]);
    let at: Vec<(&str, usize)> = errors
        .iter()
        .map(|e| (e.file.to_str().unwrap(), e.line))
        .collect();
    assert_eq!(
        at,
        [
            ("a.toml", 3),
            ("b.toml", 4),
            ("b.toml", 4),
            ("c.toml", 2),
            ("c.toml", 3),
            ("c.toml", 4)
        ],
        "{errors:#?}"
    );
    let display = PolicyErrors(errors).to_string();
    assert_eq!(display.lines().count(), 6, "{display}");
}

#[test]
fn workloads_for_cgroup_returns_every_matching_workload() {
    let other = "[[workload]]\nname = \"all-jobs\"\ncgroups = [\"/chunk-jobs\"]\ntargets = [\"orders-db\"]\n";
    let set = parse_ok(&[("a.toml", WORKLOAD), ("b.toml", other), ("t.toml", TARGET)]);
    let names = |path: &str| -> Vec<String> {
        set.workloads_for_cgroup(path)
            .iter()
            .map(|w| w.name.clone())
            .collect()
    };
    assert_eq!(
        names("/chunk-jobs/nightly/run-1/sub"),
        ["nightly-chunker", "all-jobs"]
    );
    assert_eq!(names("/chunk-jobs/weekly/run-1"), ["all-jobs"]);
    assert_eq!(
        names("/system.slice/nightly-chunker.service"),
        ["nightly-chunker"]
    );
    assert!(names("/user.slice/user-1000.slice").is_empty());
}

#[test]
fn summary_counts_and_pluralises() {
    assert_eq!(PolicySet::default().summary(), "0 workloads, 0 targets");
    let two = "[[workload]]\nname = \"w2\"\ntargets = [\"orders-db\"]\n";
    let set = parse_ok(&[("a.toml", WORKLOAD), ("b.toml", two), ("t.toml", TARGET)]);
    assert_eq!(set.summary(), "2 workloads, 1 target");
}

#[test]
fn load_dir_on_an_empty_dir_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("README.md"), "not a policy").unwrap();
    let errors = load_dir(dir.path()).unwrap_err();
    assert_eq!(errors.len(), 1);
    let e = &errors.0[0];
    assert_eq!((e.file.as_path(), e.line), (dir.path(), 0));
    assert!(e.message.starts_with("no policy files"), "{e}");
}

#[test]
fn load_dir_on_a_missing_dir_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let errors = load_dir(&missing).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors.0[0].file, missing);
    assert_eq!(errors.0[0].line, 0);
    assert!(errors.to_string().contains("cannot read policy directory"));
}

#[test]
fn load_dir_reads_toml_files_in_name_order_non_recursively() {
    let dir = tempfile::tempdir().unwrap();
    let second = "[[workload]]\nname = \"second\"\ntargets = [\"orders-db\"]\n";
    std::fs::write(dir.path().join("b.toml"), second).unwrap();
    std::fs::write(dir.path().join("a.toml"), WORKLOAD).unwrap();
    std::fs::write(dir.path().join("targets.toml"), TARGET).unwrap();
    std::fs::write(dir.path().join("ignored.txt"), "junk").unwrap();
    std::fs::write(dir.path().join(".hidden.toml"), "junk").unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/x.toml"), "junk").unwrap();
    let set = load_dir(dir.path()).unwrap();
    let names: Vec<&str> = set.workloads.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["nightly-chunker", "second"]);
    assert_eq!(set.workloads[1].source.file, dir.path().join("b.toml"));
}

#[test]
fn load_dir_reports_unreadable_files_with_the_other_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.toml"), [0xff, 0xfe, b'\n']).unwrap();
    std::fs::write(dir.path().join("b.toml"), "[[target]]\nname = 1\n").unwrap();
    let errors = load_dir(dir.path()).unwrap_err();
    let at: Vec<(PathBuf, usize)> = errors.iter().map(|e| (e.file.clone(), e.line)).collect();
    assert_eq!(
        at,
        [
            (dir.path().join("a.toml"), 0),
            (dir.path().join("b.toml"), 2)
        ],
        "{errors}"
    );
}
