//! Tests of the whole policy layer: files in, `PolicySet` or positioned errors out.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

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

/// The first lines (1 to 4) of a postgres target `t`; its fields and tables follow.
const PG_HEAD: &str =
    "[[target]]\nname = \"t\"\nprotocol = \"postgres\"\naddresses = [\"10.0.0.1:5432\"]\n";

/// A `[target.credentials]` table for static credentials (3 lines).
const STATIC_CREDENTIALS: &str =
    "[target.credentials]\nusername = \"chunker\"\npassword = { env = \"PW\" }\n";

/// A postgres target `t`: [`PG_HEAD`], then `body` from line 5, then
/// [`STATIC_CREDENTIALS`].
fn pg_target(body: &str) -> String {
    format!("{PG_HEAD}{body}{STATIC_CREDENTIALS}")
}

/// A postgres target `t` whose `[target.credentials]` table starts on line 5
/// with `mode`, `username` and `password`, then `more` (from line 8).
fn pg_credentials(mode: &str, more: &str) -> String {
    format!(
        "{PG_HEAD}[target.credentials]\nmode = \"{mode}\"\nusername = \"admin\"\n\
         password = {{ file = \"/run/secrets/admin\" }}\n{more}"
    )
}

fn the_target(text: &str) -> Target {
    let mut set = parse_ok(&[("t.toml", text)]);
    assert_eq!(set.targets.len(), 1);
    set.targets.remove(0)
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
            mode: CredentialMode::Static,
        })
    );
    assert_eq!(
        t.postgres,
        Some(PostgresSettings {
            database: None,
            allow_replication: false,
            tls: TlsSettings {
                mode: TlsMode::VerifyFull,
                ca_file: None,
                server_name: None,
            },
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
    let orders = set.target("orders-db").unwrap();
    assert_eq!(
        orders.credentials.as_ref().unwrap().mode,
        CredentialMode::Static
    );
    let tls = &orders.postgres.as_ref().unwrap().tls;
    assert_eq!(tls.mode, TlsMode::VerifyFull);
    assert!(tls.ca_file.is_some());

    let masking = &set
        .workload("nightly-chunker")
        .unwrap()
        .access_for("orders-db")
        .unwrap()
        .masking;
    assert_eq!(masking.rules.len(), 4);
    assert!(masking.key.is_some());
    assert_eq!(masking.copy_out, CopyOutMasked::Mask);

    let reporting = set.target("reporting-db").unwrap();
    assert!(matches!(
        reporting.credentials.as_ref().unwrap().mode,
        CredentialMode::Ephemeral { .. }
    ));
    assert_eq!(
        set.workload("monthly-reports").unwrap().targets,
        ["reporting-db"]
    );
    // Every workload has SQL access rules for its postgres targets.
    assert!(
        set.access_warnings().is_empty(),
        "{:?}",
        set.access_warnings()
    );
    let access = set
        .workload("nightly-chunker")
        .unwrap()
        .access_for("orders-db")
        .unwrap();
    assert!(access.allow.iter().any(|r| r.name == "stage"));
    assert_eq!(access.approve[0].rule.name, "bulk-staging");
    assert_eq!(access.approve[0].groups, ["dba"]);
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
    let other = "[[target]]\nname = \"replica\"\nprotocol = \"tcp\"\naddresses = [\"[::ffff:127.0.0.1]:5432\"]\n";
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

#[test]
fn postgres_target_without_credentials_is_refused_at_its_header() {
    let text = format!("# orders\n{PG_HEAD}database = \"orders\"\n");
    let e = only_error(
        &[("t.toml", &text)],
        ("t.toml", 2, 1),
        "postgres target `t` needs a [target.credentials] table: the agent logs in upstream with it",
    );
    assert!(!e.message.contains('\n'));
}

#[test]
fn tcp_target_needs_no_credentials_and_has_no_postgres_settings() {
    let t = the_target(&target_with_addresses(r#"["10.0.0.1:6379"]"#));
    assert_eq!(t.protocol, Protocol::Tcp);
    assert!(t.credentials.is_none());
    assert!(t.postgres.is_none());
}

#[test]
fn tcp_target_may_still_have_credentials() {
    let text = format!(
        "{}{STATIC_CREDENTIALS}",
        target_with_addresses(r#"["10.0.0.1:1"]"#)
    );
    let t = the_target(&text);
    assert_eq!(t.credentials.unwrap().username, "chunker");
    assert!(t.postgres.is_none());
}

#[test]
fn postgres_defaults_are_client_database_no_replication_and_verify_full() {
    let t = the_target(&pg_target(""));
    let pg = t.postgres.unwrap();
    assert_eq!(pg.database, None);
    assert!(!pg.allow_replication);
    assert_eq!(pg.tls, TlsSettings::default());
    assert_eq!(pg.tls.mode, TlsMode::VerifyFull);
    assert_eq!(pg.tls.mode.to_string(), "verify-full");
    assert_eq!(t.credentials.unwrap().mode, CredentialMode::Static);
}

#[test]
fn full_postgres_target_parses() {
    let text = format!(
        "{PG_HEAD}database = \"orders\"\nallow_replication = true\n\n\
         [target.tls]\nmode = \"verify-full\"\nca_file = \"/etc/chunk-agent/orders-ca.pem\"\n\
         server_name = \"orders.db.internal\"\n\n\
         [target.credentials]\nmode = \"ephemeral\"\nusername = \"chunk_admin\"\n\
         password = {{ file = \"/etc/chunk-agent/secrets/admin.password\" }}\n\
         group_role = \"orders_reader\"\nttl = \"1h 30m\"\n"
    );
    let t = the_target(&text);
    assert_eq!(
        t.postgres,
        Some(PostgresSettings {
            database: Some("orders".into()),
            allow_replication: true,
            tls: TlsSettings {
                mode: TlsMode::VerifyFull,
                ca_file: Some("/etc/chunk-agent/orders-ca.pem".into()),
                server_name: Some("orders.db.internal".into()),
            },
        })
    );
    assert_eq!(
        t.credentials,
        Some(Credentials {
            username: "chunk_admin".into(),
            password: SecretRef::File("/etc/chunk-agent/secrets/admin.password".into()),
            mode: CredentialMode::Ephemeral {
                group_role: "orders_reader".into(),
                ttl: std::time::Duration::from_secs(90 * 60),
            },
        })
    );
}

#[test]
fn allow_replication_false_is_accepted_on_postgres() {
    let t = the_target(&pg_target("allow_replication = false\n"));
    assert!(!t.postgres.unwrap().allow_replication);
}

#[test]
fn allow_replication_must_be_a_boolean() {
    only_error(
        &[("t.toml", &pg_target("allow_replication = \"yes\"\n"))],
        ("t.toml", 5, 21),
        "expected a boolean",
    );
}

#[test]
fn postgres_only_fields_are_refused_on_tcp_targets_naming_each_field() {
    let text = format!(
        "{}database = \"orders\"\nallow_replication = false\n\n[target.tls]\nmode = \"disable\"\n",
        target_with_addresses(r#"["10.0.0.1:5432"]"#)
    );
    let errors = errors(&[("t.toml", &text)]);
    let got: Vec<(usize, usize, &str)> = errors
        .iter()
        .map(|e| (e.line, e.column, e.message.as_str()))
        .collect();
    let why = "only applies to postgres targets: target `t` has protocol = \"tcp\"";
    assert_eq!(got.len(), 3, "{errors:#?}");
    assert_eq!((got[0].0, got[0].1), (5, 12));
    assert!(
        got[0].2.starts_with("`database` ") && got[0].2.contains(why),
        "{}",
        got[0].2
    );
    assert_eq!((got[1].0, got[1].1), (6, 21));
    assert!(got[1].2.starts_with("`allow_replication` ") && got[1].2.contains(why));
    assert_eq!((got[2].0, got[2].1), (8, 1));
    assert!(got[2].2.starts_with("[target.tls] ") && got[2].2.contains(why));
}

#[test]
fn inline_tls_table_on_a_tcp_target_is_refused_at_the_table() {
    let text = format!(
        "{}tls = {{ mode = \"verify-full\" }}\n",
        target_with_addresses(r#"["10.0.0.1:5432"]"#)
    );
    only_error(
        &[("t.toml", &text)],
        ("t.toml", 5, 7),
        "[target.tls] only applies",
    );
}

#[test]
fn empty_tls_table_means_verify_full_with_system_roots() {
    let t = the_target(&pg_target("[target.tls]\n"));
    assert_eq!(t.postgres.unwrap().tls, TlsSettings::default());
}

#[test]
fn tls_mode_disable_is_accepted() {
    let t = the_target(&pg_target("[target.tls]\nmode = \"disable\"\n"));
    let tls = t.postgres.unwrap().tls;
    assert_eq!(tls.mode, TlsMode::Disable);
    assert_eq!(tls.mode.as_str(), "disable");
}

#[test]
fn tls_modes_without_full_verification_are_refused_with_the_reason() {
    for mode in ["prefer", "require", "verify-ca", "allow"] {
        let text = pg_target(&format!("[target.tls]\nmode = \"{mode}\"\n"));
        let e = only_error(
            &[("t.toml", &text)],
            ("t.toml", 6, 8),
            &format!("unsupported tls mode `{mode}`: use \"verify-full\""),
        );
        assert!(
            e.message
                .contains("without full verification is not offered"),
            "{e}"
        );
    }
    let text = pg_target("[target.tls]\nmode = \"VERIFY-FULL\"\n");
    let e = only_error(&[("t.toml", &text)], ("t.toml", 6, 8), "or \"disable\"");
    assert!(!e.message.contains("not offered"), "{e}");
}

#[test]
fn unknown_tls_field_is_refused() {
    let text = pg_target("[target.tls]\nsslmode = \"require\"\n");
    only_error(
        &[("t.toml", &text)],
        ("t.toml", 6, 1),
        "unknown field `sslmode`",
    );
}

#[test]
fn ca_file_must_be_absolute() {
    let text = pg_target("[target.tls]\nca_file = \"certs/ca.pem\"\n");
    only_error(
        &[("t.toml", &text)],
        ("t.toml", 6, 11),
        "ca_file path `certs/ca.pem` must be absolute",
    );
}

#[test]
fn ca_file_and_server_name_are_refused_with_tls_disabled() {
    let text = pg_target(
        "[target.tls]\nmode = \"disable\"\nca_file = \"/etc/ca.pem\"\nserver_name = \"db\"\n",
    );
    let errors = errors(&[("t.toml", &text)]);
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert_eq!((errors[0].line, errors[0].column), (7, 11));
    assert!(
        errors[0]
            .message
            .starts_with("`ca_file` is only allowed with mode = \"verify-full\""),
        "{}",
        errors[0]
    );
    assert_eq!((errors[1].line, errors[1].column), (8, 15));
    assert!(
        errors[1]
            .message
            .starts_with("`server_name` is only allowed with mode = \"verify-full\""),
        "{}",
        errors[1]
    );
}

#[test]
fn server_name_may_be_a_dns_name_or_an_ip_address() {
    for name in ["orders.db.internal", "localhost", "10.0.0.1", "::1"] {
        let text = pg_target(&format!("[target.tls]\nserver_name = \"{name}\"\n"));
        let tls = the_target(&text).postgres.unwrap().tls;
        assert_eq!(tls.server_name.as_deref(), Some(name));
        assert_eq!(tls.mode, TlsMode::VerifyFull);
    }
}

#[test]
fn invalid_server_name_is_refused() {
    for name in [
        "*.db.internal",
        "db internal",
        "db.internal:5432",
        "",
        "10.0.0.300",
    ] {
        let text = pg_target(&format!("[target.tls]\nserver_name = \"{name}\"\n"));
        only_error(
            &[("t.toml", &text)],
            ("t.toml", 6, 15),
            &format!("invalid server_name `{name}`: expected a DNS name"),
        );
    }
}

#[test]
fn database_is_a_postgres_identifier_as_written() {
    // Quoted when used: any character but NUL, up to 63 bytes.
    for name in ["orders", "Orders DB", "a\\\"b", &"d".repeat(63), "é"] {
        let text = pg_target(&format!("database = \"{name}\"\n"));
        let expected = name.replace("\\\"", "\"");
        assert_eq!(the_target(&text).postgres.unwrap().database, Some(expected));
    }
}

#[test]
fn invalid_database_is_refused() {
    let long = "d".repeat(64);
    let cases = [
        ("", "`database` must not be empty"),
        (
            long.as_str(),
            "`database` is 64 bytes long: PostgreSQL identifiers are at most 63 bytes",
        ),
        ("a\\u0000b", "`database` must not contain a NUL character"),
    ];
    for (written, needle) in cases {
        let text = pg_target(&format!("database = \"{written}\"\n"));
        only_error(&[("t.toml", &text)], ("t.toml", 5, 12), needle);
    }
    // 32 two-byte characters: 64 bytes.
    let text = pg_target(&format!("database = \"{}\"\n", "é".repeat(32)));
    only_error(&[("t.toml", &text)], ("t.toml", 5, 12), "is 64 bytes long");
}

#[test]
fn username_is_at_most_63_bytes_without_nul() {
    let text = TARGET.replace(
        "username = \"chunker\"",
        &format!("username = \"{}\"", "u".repeat(63)),
    );
    parse_ok(&[("t.toml", &text)]);
    let text = TARGET.replace(
        "username = \"chunker\"",
        &format!("username = \"{}\"", "u".repeat(64)),
    );
    only_error(
        &[("t.toml", &text)],
        ("t.toml", 7, 12),
        "credentials username is 64 bytes long",
    );
    let text = TARGET.replace("username = \"chunker\"", "username = \"a\\u0000\"");
    only_error(
        &[("t.toml", &text)],
        ("t.toml", 7, 12),
        "credentials username must not contain a NUL character",
    );
    let text = TARGET.replace("username = \"chunker\"", "username = \"  \"");
    only_error(
        &[("t.toml", &text)],
        ("t.toml", 7, 12),
        "username must not be empty or blank",
    );
}

#[test]
fn static_is_the_default_credentials_mode_and_may_be_explicit() {
    let t = the_target(&pg_credentials("static", ""));
    let c = t.credentials.unwrap();
    assert_eq!(c.mode, CredentialMode::Static);
    assert_eq!(c.username, "admin");
    assert_eq!(c.password, SecretRef::File("/run/secrets/admin".into()));
}

#[test]
fn ephemeral_credentials_default_to_a_15_minute_ttl() {
    let t = the_target(&pg_credentials(
        "ephemeral",
        "group_role = \"orders_reader\"\n",
    ));
    assert_eq!(
        t.credentials.unwrap().mode,
        CredentialMode::Ephemeral {
            group_role: "orders_reader".into(),
            ttl: std::time::Duration::from_secs(15 * 60),
        }
    );
}

#[test]
fn ephemeral_credentials_need_a_group_role_at_the_mode() {
    only_error(
        &[("t.toml", &pg_credentials("ephemeral", "ttl = \"5m\"\n"))],
        ("t.toml", 6, 8),
        "ephemeral credentials need `group_role`: the least-privilege group role granted to each \
         per-session role",
    );
}

#[test]
fn group_role_is_a_postgres_identifier_as_written() {
    let text = pg_credentials("ephemeral", "group_role = \"Orders Readers\"\n");
    let mode = the_target(&text).credentials.unwrap().mode;
    assert!(
        matches!(&mode, CredentialMode::Ephemeral { group_role, .. } if group_role == "Orders Readers"),
        "{mode:?}"
    );
    let long = "g".repeat(64);
    let cases = [
        ("", "`group_role` must not be empty"),
        (long.as_str(), "`group_role` is 64 bytes long"),
        ("a\\u0000b", "`group_role` must not contain a NUL character"),
    ];
    for (written, needle) in cases {
        let text = pg_credentials("ephemeral", &format!("group_role = \"{written}\"\n"));
        only_error(&[("t.toml", &text)], ("t.toml", 9, 14), needle);
    }
}

#[test]
fn group_role_and_ttl_are_refused_for_static_credentials() {
    let text = pg_credentials("static", "group_role = \"orders_reader\"\nttl = \"15m\"\n");
    let errors = errors(&[("t.toml", &text)]);
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert_eq!((errors[0].line, errors[0].column), (9, 14));
    assert!(
        errors[0]
            .message
            .starts_with("`group_role` is only used with mode = \"ephemeral\""),
        "{}",
        errors[0]
    );
    assert_eq!((errors[1].line, errors[1].column), (10, 7));
    assert!(
        errors[1]
            .message
            .starts_with("`ttl` is only used with mode = \"ephemeral\""),
        "{}",
        errors[1]
    );
    // Also when `mode` is left out (static by default).
    let text = TARGET.replace(
        "username = \"chunker\"",
        "username = \"chunker\"\ngroup_role = \"r\"",
    );
    only_error(
        &[("t.toml", &text)],
        ("t.toml", 8, 14),
        "`group_role` is only used",
    );
}

#[test]
fn ttl_is_a_duration_between_1m_and_24h() {
    let ttl_of = |written: &str| {
        let text = pg_credentials(
            "ephemeral",
            &format!("group_role = \"r\"\nttl = \"{written}\"\n"),
        );
        match the_target(&text).credentials.unwrap().mode {
            CredentialMode::Ephemeral { ttl, .. } => ttl.as_secs(),
            CredentialMode::Static => panic!("not ephemeral"),
        }
    };
    assert_eq!(ttl_of("1m"), 60);
    assert_eq!(ttl_of("60s"), 60);
    assert_eq!(ttl_of("2h 5m"), 7500);
    assert_eq!(ttl_of("1h30m"), 5400);
    assert_eq!(ttl_of("24h"), 86400);
    assert_eq!(ttl_of("1day"), 86400);

    for written in ["59s", "0s", "24h 1s", "2days"] {
        let text = pg_credentials(
            "ephemeral",
            &format!("group_role = \"r\"\nttl = \"{written}\"\n"),
        );
        only_error(
            &[("t.toml", &text)],
            ("t.toml", 10, 7),
            &format!("ttl `{written}` is out of range: it must be between 1m and 24h"),
        );
    }
    for written in ["15", "soon", "", "-5m"] {
        let text = pg_credentials(
            "ephemeral",
            &format!("group_role = \"r\"\nttl = \"{written}\"\n"),
        );
        let e = only_error(
            &[("t.toml", &text)],
            ("t.toml", 10, 7),
            &format!("invalid ttl `{written}`: "),
        );
        assert!(
            e.message
                .ends_with("expected a duration such as \"15m\" or \"1h30m\""),
            "{e}"
        );
    }
    let text = pg_credentials("ephemeral", "group_role = \"r\"\nttl = 900\n");
    only_error(&[("t.toml", &text)], ("t.toml", 10, 7), "expected a string");
}

#[test]
fn unknown_credentials_mode_is_refused() {
    only_error(
        &[("t.toml", &pg_credentials("rotating", ""))],
        ("t.toml", 6, 8),
        "unknown variant `rotating`, expected `static` or `ephemeral`",
    );
}

#[test]
fn all_credential_and_tls_errors_of_a_target_are_collected() {
    let text = format!(
        "{PG_HEAD}database = \"\"\n[target.tls]\nmode = \"prefer\"\nca_file = \"ca.pem\"\n\
         [target.credentials]\nmode = \"ephemeral\"\nusername = \"\"\npassword = \"hunter2\"\n\
         ttl = \"1s\"\n"
    );
    let errors = errors(&[("t.toml", &text)]);
    let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
    // database, tls mode, ca_file, mode (no group_role), username, password, ttl
    assert_eq!(lines, [5, 7, 8, 10, 11, 12, 13], "{errors:#?}");
    assert!(errors.iter().all(|e| !e.message.contains("hunter2")));
}

/// [`WORKLOAD`] with a `[[workload.access]]` table for `orders-db`: header on line 6,
/// `target` on line 7, `body` from line 8.
fn with_access(body: &str) -> String {
    format!("{WORKLOAD}[[workload.access]]\ntarget = \"orders-db\"\n{body}")
}

/// The only error of [`with_access`]`(body)` (with [`TARGET`]), at `line:column`.
fn access_error(body: &str, at: (usize, usize), needle: &str) -> PolicyError {
    let text = with_access(body);
    only_error(
        &[("w.toml", &text), ("t.toml", TARGET)],
        ("w.toml", at.0, at.1),
        needle,
    )
}

fn the_access(body: &str) -> Access {
    let text = with_access(body);
    let set = parse_ok(&[("w.toml", &text), ("t.toml", TARGET)]);
    let w = set.workload("nightly-chunker").unwrap();
    assert_eq!(w.access.len(), 1);
    w.access_for("orders-db").unwrap().clone()
}

#[test]
fn access_rules_parse_into_the_model() {
    let access = the_access(
        r#"search_path = ["staging", "public"]
allow = [
  { operations = ["read"], tables = ["public.*", "staging.*"] },
  { name = "stage-writes", operations = ["write", "bulk_write"], tables = ["staging.events"] },
  { operations = ["listen"] },
]
deny = [
  { name = "no-audit", operations = ["write", "ddl"], tables = ["*.audit_*"], reason = "app only" },
]
approve = [
  { name = "bulk", operations = ["bulk_write"], tables = ["staging.*"], approvers = 2, groups = ["dba", "ops"], timeout = "5m" },
  { operations = ["ddl"] },
]
functions = { allow = ["staging.refresh_stats"], deny = ["my_schema.dangerous_fn", "evil*"] }
"#,
    );
    assert_eq!(access.target, "orders-db");
    assert_eq!(access.search_path, ["staging", "public"]);
    assert_eq!(access.source.to_string(), "w.toml:6");

    let names: Vec<&str> = access.allow.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["allow[0]", "stage-writes", "allow[2]"]);
    assert_eq!(access.allow[0].source.line, 10);
    assert_eq!(
        access.allow[1].operations,
        [Operation::Write, Operation::BulkWrite]
    );
    let tables: Vec<&str> = access.allow[0]
        .tables
        .as_ref()
        .unwrap()
        .iter()
        .map(ObjectPattern::as_str)
        .collect();
    assert_eq!(tables, ["public.*", "staging.*"]);
    assert!(access.allow[2].tables.is_none());
    assert!(access.allow[0].matches(Operation::Read, Some(("staging", "x"))));
    assert!(!access.allow[0].matches(Operation::Write, Some(("staging", "x"))));
    assert!(access.allow[2].matches(Operation::Listen, None));

    assert_eq!(access.deny[0].name, "no-audit");
    assert_eq!(access.deny[0].reason.as_deref(), Some("app only"));
    assert!(access.deny[0].matches(Operation::Ddl, Some(("public", "audit_log"))));

    let bulk = &access.approve[0];
    assert_eq!(bulk.rule.name, "bulk");
    assert_eq!(bulk.approvers, 2);
    assert_eq!(bulk.groups, ["dba", "ops"]);
    assert_eq!(bulk.timeout, Duration::from_secs(300));
    let defaults = &access.approve[1];
    assert_eq!(defaults.rule.name, "approve[1]");
    assert_eq!(defaults.approvers, 1);
    assert!(defaults.groups.is_empty());
    assert_eq!(defaults.timeout, Duration::from_secs(600));

    let allow: Vec<&str> = access
        .functions
        .allow
        .iter()
        .map(FunctionPattern::as_str)
        .collect();
    assert_eq!(allow, ["staging.refresh_stats"]);
    assert_eq!(access.functions.deny.len(), 2);
    assert_eq!(access.functions.deny[1].source.line, 21);
}

#[test]
fn access_rules_may_also_be_written_as_arrays_of_tables() {
    let access = the_access(
        "search_path = [\"public\"]\n\n[[workload.access.allow]]\nname = \"reads\"\n\
         operations = [\"read\"]\ntables = [\"public.*\"]\n\n[[workload.access.deny]]\n\
         operations = [\"read\"]\ntables = [\"public.credentials\"]\n\n\
         [workload.access.functions]\nallow = [\"s.p\"]\n",
    );
    assert_eq!(access.allow[0].name, "reads");
    assert_eq!(access.allow[0].source.line, 10);
    assert_eq!(access.deny[0].name, "deny[0]");
    assert_eq!(access.functions.allow.len(), 1);
}

#[test]
fn access_defaults_are_public_and_nothing_allowed() {
    let access = the_access("");
    assert_eq!(access.search_path, ["public"]);
    assert!(access.allow.is_empty() && access.deny.is_empty() && access.approve.is_empty());
    assert!(access.functions.allow.is_empty() && access.functions.deny.is_empty());
}

#[test]
fn a_postgres_target_without_access_rules_is_valid_but_warned_about() {
    let set = parse_ok(&[("w.toml", WORKLOAD), ("t.toml", TARGET)]);
    assert!(set.workloads[0].access.is_empty());
    assert_eq!(
        set.access_warnings(),
        [
            "w.toml:1: workload `nightly-chunker` reaches postgres target `orders-db` but has no \
          [[workload.access]] table for it: every SQL statement will be denied"
        ]
    );
    let text = with_access("allow = [{ operations = [\"read\"] }]\n");
    let set = parse_ok(&[("w.toml", &text), ("t.toml", TARGET)]);
    assert!(set.access_warnings().is_empty());
    // tcp targets have no SQL.
    let tcp = "[[workload]]\nname = \"w\"\ntargets = [\"cache\"]\n[[target]]\nname = \"cache\"\n\
               protocol = \"tcp\"\naddresses = [\"10.0.0.9:6379\"]\n";
    assert!(parse_ok(&[("c.toml", tcp)]).access_warnings().is_empty());
}

#[test]
fn unknown_operation_is_refused_with_the_list() {
    let e = access_error(
        "allow = [{ operations = [\"read\", \"delete\"] }]\n",
        (8, 34),
        "unknown operation `delete` (operations: read, write, bulk_write, ddl, admin, \
         maintenance, lock, copy_in, copy_out, call, do, listen, notify, set, set_role, \
         search_path)",
    );
    assert!(!e.message.contains('\n'));
}

#[test]
fn operations_must_be_listed_once_and_not_be_empty() {
    access_error(
        "allow = [{ operations = [] }]\n",
        (8, 25),
        "`operations` must not be empty",
    );
    access_error(
        "deny = [{ operations = [\"read\", \"read\"] }]\n",
        (8, 33),
        "operation `read` is listed twice",
    );
}

#[test]
fn call_is_allowed_through_functions_allow_only() {
    access_error(
        "allow = [{ operations = [\"call\"] }]\n",
        (8, 26),
        "list the procedures in `functions = { allow = [\"schema.procedure\"] }`",
    );
    // Deny and approve rules may name it.
    the_access("deny = [{ operations = [\"call\"], tables = [\"public.*\"] }]\n");
    the_access("approve = [{ operations = [\"call\"] }]\n");
}

#[test]
fn statement_wide_operations_cannot_have_tables() {
    access_error(
        "allow = [{ operations = [\"read\", \"set_role\"], tables = [\"public.*\"] }]\n",
        (8, 34),
        "operation `set_role` concerns no table",
    );
}

#[test]
fn table_patterns_are_checked() {
    access_error(
        "allow = [{ operations = [\"read\"], tables = [\"orders\"] }]\n",
        (8, 45),
        "table pattern `orders` needs a schema: write `schema.table`",
    );
    access_error(
        "allow = [{ operations = [\"read\"], tables = [] }]\n",
        (8, 44),
        "`tables = []` matches nothing",
    );
    access_error(
        "deny = [{ operations = [\"read\"], tables = [\"public.[x\"] }]\n",
        (8, 44),
        "invalid pattern `public.[x`",
    );
}

#[test]
fn rule_names_are_valid_and_unique_in_their_access_table() {
    access_error(
        "allow = [{ name = \"Reads\", operations = [\"read\"] }]\n",
        (8, 19),
        "invalid rule name `Reads`",
    );
    access_error(
        "allow = [{ name = \"r\", operations = [\"read\"] }]\n\
         deny = [{ name = \"r\", operations = [\"ddl\"] }]\n",
        (9, 18),
        "rule name `r` is already used in this access table (at w.toml:8)",
    );
}

#[test]
fn access_target_must_be_a_postgres_target_of_the_workload() {
    let other = "[[target]]\nname = \"reports-db\"\nprotocol = \"postgres\"\n\
                 addresses = [\"10.0.0.2:5432\"]\n[target.credentials]\nusername = \"u\"\n\
                 password = { env = \"PW\" }\n";
    let text = format!("{WORKLOAD}[[workload.access]]\ntarget = \"reports-db\"\n");
    only_error(
        &[("w.toml", &text), ("t.toml", TARGET), ("o.toml", other)],
        ("w.toml", 7, 10),
        "workload `nightly-chunker` has access rules for target `reports-db` but does not list \
         it in `targets`",
    );
    let text = format!("{WORKLOAD}[[workload.access]]\ntarget = \"nope\"\n");
    only_error(
        &[("w.toml", &text), ("t.toml", TARGET)],
        ("w.toml", 7, 10),
        "unknown target `nope` (defined targets: `orders-db`); a [[workload.access]] table is \
         for one of the workload's targets",
    );
    let tcp = "[[workload]]\nname = \"w\"\ntargets = [\"cache\"]\n[[workload.access]]\n\
               target = \"cache\"\n[[target]]\nname = \"cache\"\nprotocol = \"tcp\"\n\
               addresses = [\"10.0.0.9:6379\"]\n";
    only_error(
        &[("c.toml", tcp)],
        ("c.toml", 5, 10),
        "access rules only apply to postgres targets: target `cache` has protocol = \"tcp\"",
    );
    let twice = format!(
        "{}[[workload.access]]\ntarget = \"orders-db\"\n",
        with_access("")
    );
    only_error(
        &[("w.toml", &twice), ("t.toml", TARGET)],
        ("w.toml", 9, 10),
        "workload `nightly-chunker` already has a [[workload.access]] table for target \
         `orders-db` (at w.toml:6)",
    );
}

#[test]
fn search_path_is_a_list_of_schema_names() {
    access_error(
        "search_path = []\n",
        (8, 15),
        "`search_path` must not be empty",
    );
    access_error(
        "search_path = [\"$user\", \"public\"]\n",
        (8, 16),
        "write the schema name itself",
    );
    access_error(
        "search_path = [\"public\", \"public\"]\n",
        (8, 26),
        "schema `public` is listed twice",
    );
    access_error(
        &format!("search_path = [\"{}\"]\n", "s".repeat(64)),
        (8, 16),
        "at most 63 bytes",
    );
}

#[test]
fn approval_settings_are_checked() {
    access_error(
        "approve = [{ operations = [\"ddl\"], approvers = 0 }]\n",
        (8, 48),
        "approvers = 0 is out of range: it must be between 1 and 10",
    );
    access_error(
        "approve = [{ operations = [\"ddl\"], timeout = \"1s\" }]\n",
        (8, 46),
        "timeout `1s` is out of range: it must be between 10s and 24h",
    );
    access_error(
        "approve = [{ operations = [\"ddl\"], timeout = \"soon\" }]\n",
        (8, 46),
        "invalid timeout `soon`",
    );
    access_error(
        "approve = [{ operations = [\"ddl\"], groups = [\"db admins\"] }]\n",
        (8, 46),
        "invalid group name `db admins`",
    );
    access_error(
        "approve = [{ operations = [\"ddl\"], reason = \"x\" }]\n",
        (8, 36),
        "unknown field `reason`",
    );
}

#[test]
fn deny_reasons_must_say_something() {
    access_error(
        "deny = [{ operations = [\"ddl\"], reason = \" \" }]\n",
        (8, 42),
        "`reason` must not be empty",
    );
    access_error(
        "allow = [{ operations = [\"ddl\"], reason = \"x\" }]\n",
        (8, 34),
        "unknown field `reason`",
    );
}

#[test]
fn function_patterns_are_checked() {
    access_error(
        "functions = { deny = [\"a.b.c\"] }\n",
        (8, 23),
        "function pattern `a.b.c` has more than one `.`",
    );
    access_error(
        "functions = { allow = [\"\"] }\n",
        (8, 24),
        "has an empty part",
    );
    access_error(
        "functions = { grant = [\"x\"] }\n",
        (8, 15),
        "unknown field `grant`",
    );
}

#[test]
fn all_access_errors_are_collected() {
    let text = with_access(
        "search_path = []\nallow = [{ operations = [\"nope\"] }]\n\
         deny = [{ operations = [\"read\"], tables = [\"x\"] }]\n\
         approve = [{ operations = [\"ddl\"], approvers = 99 }]\n",
    );
    let errors = errors(&[("w.toml", &text), ("t.toml", TARGET)]);
    let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, [8, 9, 10, 11], "{errors:#?}");
}

/// The 1-based column of the first `needle` in `line`.
fn column_of(line: &str, needle: &str) -> usize {
    line.find(needle)
        .unwrap_or_else(|| panic!("{needle} not in {line}"))
        + 1
}

/// The only error of a [`with_access`] body made of `line` (on line 8), at the first
/// `needle` of the line, containing `message`.
fn mask_error(line: &str, needle: &str, message: &str) -> PolicyError {
    access_error(&format!("{line}\n"), (8, column_of(line, needle)), message)
}

#[test]
fn mask_rules_parse_into_the_model() {
    let access = the_access(
        r#"masking_key = { file = "/etc/chunk-agent/secrets/mask.key" }
copy_out_masked = "refuse"
mask = [
  { name = "cards", columns = ["public.payments.card_number", "*.*.pan"], strategy = "partial", keep_last = 4 },
  { result_columns = ["email*"], strategy = "hash" },
  { name = "pii-in-text", detectors = ["card", "email", "ssn", "phone", "iban", "jwt", "api_key"], patterns = ["EMP-[0-9]{6}"], strategy = "redact" },
  { columns = ["staging.*.ssn"], strategy = "null" },
]
"#,
    );
    let m = &access.masking;
    assert_eq!(
        m.key,
        Some(SecretRef::File("/etc/chunk-agent/secrets/mask.key".into()))
    );
    assert_eq!(m.copy_out, CopyOutMasked::Refuse);
    let names: Vec<&str> = m.rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["cards", "mask[1]", "pii-in-text", "mask[3]"]);
    assert_eq!(m.rules[0].source.line, 11);
    assert_eq!(m.rules[3].source.line, 14);

    let cards = &m.rules[0];
    assert_eq!(cards.strategy, MaskStrategy::Partial { keep_last: 4 });
    let columns: Vec<&str> = cards.columns.iter().map(ColumnPattern::as_str).collect();
    assert_eq!(columns, ["public.payments.card_number", "*.*.pan"]);
    assert!(cards.is_column_rule() && !cards.is_content_rule());
    assert!(cards.covers_column("public", "payments", "card_number"));
    assert!(cards.covers_column("archive", "old_cards", "pan"));
    assert!(!cards.covers_column("public", "payments", "id"));
    assert!(cards.covers_table("public", "payments"));

    let aliases = &m.rules[1];
    assert_eq!(aliases.strategy, MaskStrategy::Hash);
    assert!(aliases.covers_result_column("email_lower"));
    assert!(!aliases.covers_result_column("name"));

    let pii = &m.rules[2];
    assert_eq!(pii.detectors, Detector::ALL);
    assert!(pii.is_content_rule() && !pii.is_column_rule());
    assert!(pii.patterns[0].is_match("id EMP-123456"));
    assert_eq!(m.rules[3].strategy, MaskStrategy::Null);
    assert!(m.has_column_rules() && m.has_content_rules() && !m.is_empty());
}

#[test]
fn mask_rules_may_be_written_as_arrays_of_tables() {
    let access = the_access(
        "masking_key = { env = \"MASK_KEY\" }\n\n[[workload.access.mask]]\nname = \"cards\"\n\
         columns = [\"public.payments.card_number\"]\nstrategy = \"partial\"\n\n\
         [[workload.access.mask]]\ndetectors = [\"email\"]\nstrategy = \"hash\"\n",
    );
    let m = &access.masking;
    assert_eq!(m.key, Some(SecretRef::Env("MASK_KEY".into())));
    assert_eq!(m.rules[0].name, "cards");
    assert_eq!(m.rules[0].source.line, 10);
    // `keep_last` defaults to 4.
    assert_eq!(m.rules[0].strategy, MaskStrategy::Partial { keep_last: 4 });
    assert_eq!(m.rules[1].name, "mask[1]");
    assert_eq!(m.copy_out, CopyOutMasked::Mask);
}

#[test]
fn masking_defaults_to_no_rule_no_key_and_masked_copies() {
    let m = the_access("").masking;
    assert!(m.is_empty() && m.key.is_none());
    assert_eq!(m.copy_out, CopyOutMasked::Mask);
    assert_eq!(m.copy_out.to_string(), "mask");
}

#[test]
fn mask_strategies_are_checked() {
    mask_error(
        r#"mask = [{ columns = ["a.b.c"], strategy = "scramble" }]"#,
        "\"scramble\"",
        "unknown strategy `scramble` (strategies: redact, partial, hash, null)",
    );
    mask_error(
        r#"mask = [{ columns = ["a.b.c"], strategy = "hash" }]"#,
        "\"hash\"",
        "strategy \"hash\" needs a key: add `masking_key = { file = \"...\" }`",
    );
    mask_error(
        r#"mask = [{ columns = ["a.b.c"], strategy = "partial", keep_last = 0 }]"#,
        "0 }",
        "keep_last = 0 is out of range: it must be between 1 and 64",
    );
    mask_error(
        r#"mask = [{ columns = ["a.b.c"], strategy = "partial", keep_last = 300 }]"#,
        "300",
        "keep_last = 300 is out of range",
    );
    mask_error(
        r#"mask = [{ columns = ["a.b.c"], strategy = "redact", keep_last = 4 }]"#,
        "4 }",
        "`keep_last` only applies to strategy = \"partial\"",
    );
    mask_error(
        r#"mask = [{ columns = ["a.b.c"] }]"#,
        "{ columns",
        "missing field `strategy`",
    );
}

#[test]
fn mask_rules_select_by_column_or_by_content() {
    mask_error(
        r#"mask = [{ name = "both", columns = ["a.b.c"], detectors = ["email"], strategy = "null" }]"#,
        "{ name",
        "mask rule `both` mixes column selectors (`columns`, `result_columns`) and content \
         selectors (`detectors`, `patterns`): split it into two rules",
    );
    mask_error(
        r#"mask = [{ strategy = "null" }]"#,
        "{ strategy",
        "mask rule `mask[0]` selects nothing",
    );
    mask_error(
        r#"mask = [{ columns = [], strategy = "null" }]"#,
        "[]",
        "`columns = []` selects nothing",
    );
    mask_error(
        r#"mask = [{ result_columns = ["a", "a"], strategy = "null" }]"#,
        "\"a\"]",
        "`a` is listed twice in `result_columns`",
    );
}

#[test]
fn mask_patterns_are_checked() {
    mask_error(
        r#"mask = [{ columns = ["payments.card"], strategy = "null" }]"#,
        "\"payments.card\"",
        "column pattern `payments.card` must have three parts, `schema.table.column`, e.g. \
         `public.payments.card` or `*.payments.card`",
    );
    mask_error(
        r#"mask = [{ columns = ["a.b.[c"], strategy = "null" }]"#,
        "\"a.b.[c\"",
        "invalid pattern `a.b.[c`",
    );
    mask_error(
        r#"mask = [{ result_columns = ["e mail"], strategy = "null" }]"#,
        "\"e mail\"",
        "contains ' '",
    );
    mask_error(
        r#"mask = [{ detectors = ["email", "passport"], strategy = "redact" }]"#,
        "\"passport\"",
        "unknown detector `passport` (detectors: card, email, ssn, phone, iban, jwt, api_key)",
    );
    mask_error(
        r#"mask = [{ detectors = ["ssn", "ssn"], strategy = "redact" }]"#,
        "\"ssn\"]",
        "`ssn` is listed twice in `detectors`",
    );
    let e = mask_error(
        r#"mask = [{ patterns = ["EMP-[0-9"], strategy = "redact" }]"#,
        "\"EMP-",
        "invalid regular expression `EMP-[0-9`: unclosed character class (at character 5)",
    );
    assert!(!e.message.contains('\n'), "{e}");
    mask_error(
        r#"mask = [{ patterns = ["[0-9]*"], strategy = "redact" }]"#,
        "\"[0-9]*\"",
        "regular expression `[0-9]*` can match the empty string",
    );
    mask_error(
        r#"mask = [{ patterns = ["\\b"], strategy = "redact" }]"#,
        "\"\\\\b\"",
        "can match the empty string",
    );
    mask_error(
        r#"mask = [{ patterns = ["[a&&b]"], strategy = "redact" }]"#,
        "\"[a&&b]\"",
        "never matches anything",
    );
}

#[test]
fn masking_key_and_copy_out_masked_are_checked() {
    mask_error(
        r#"masking_key = "s3cr3t-key-value""#,
        "\"s3cr3t",
        "inline secrets are not allowed: use masking_key = { file = \"...\" } or { env = \"...\" }",
    );
    mask_error(
        r#"masking_key = { file = "mask.key" }"#,
        "\"mask.key\"",
        "secret file path `mask.key` must be absolute",
    );
    mask_error(
        r#"masking_key = { file = "/k", env = "K" }"#,
        "{ file",
        "a secret reference takes exactly one of `file` or `env`, not both",
    );
    mask_error(
        r#"copy_out_masked = "deny""#,
        "\"deny\"",
        "unknown copy_out_masked `deny`: use \"mask\" (mask the COPY data row by row) or \
         \"refuse\"",
    );
    // An inline key never shows up in a message.
    let text = with_access("masking_key = \"s3cr3t-key-value\"\n");
    let errors = errors(&[("w.toml", &text), ("t.toml", TARGET)]);
    assert!(errors.iter().all(|e| !e.message.contains("s3cr3t")));
}

#[test]
fn mask_rule_names_share_the_access_tables_namespace() {
    access_error(
        "allow = [{ name = \"cards\", operations = [\"read\"] }]\n\
         mask = [{ name = \"cards\", columns = [\"a.b.c\"], strategy = \"null\" }]\n",
        (9, 18),
        "rule name `cards` is already used in this access table (at w.toml:8)",
    );
    mask_error(
        r#"mask = [{ name = "Cards", columns = ["a.b.c"], strategy = "null" }]"#,
        "\"Cards\"",
        "invalid rule name `Cards`",
    );
    mask_error(
        r#"mask = [{ columns = ["a.b.c"], strategy = "null", tables = ["a.b"] }]"#,
        "tables",
        "unknown field `tables`",
    );
}

#[test]
fn all_mask_errors_are_collected() {
    let text = with_access(
        "copy_out_masked = \"x\"\n\
         mask = [\n\
         { columns = [\"bad\"], strategy = \"null\" },\n\
         { detectors = [\"nope\"], strategy = \"hash\" },\n\
         { patterns = [\"a*\"], strategy = \"partial\", keep_last = 99 },\n\
         ]\n",
    );
    let errors = errors(&[("w.toml", &text), ("t.toml", TARGET)]);
    let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
    // copy_out_masked; columns; detectors and the hash key; the pattern and keep_last.
    assert_eq!(lines, [8, 10, 11, 11, 12, 12], "{errors:#?}");
}

#[test]
fn recording_settings_default_to_redacting_and_parse_when_given() {
    let set = parse_ok(&[("w.toml", WORKLOAD), ("t.toml", TARGET)]);
    let w = set.workload("nightly-chunker").unwrap();
    assert_eq!(w.recording, RecordingSettings::default());
    assert_eq!(w.recording.bind_values, Values::Redact);

    let text = format!(
        "{WORKLOAD}[workload.recording]\nbind_values = \"keep\"\nsql_literals = \"keep\"\n\
         result_rows = 20\non_error = \"continue\"\n"
    );
    let set = parse_ok(&[("w.toml", &text), ("t.toml", TARGET)]);
    let r = set.workload("nightly-chunker").unwrap().recording;
    assert_eq!(r.bind_values, Values::Keep);
    assert_eq!(r.sql_literals, Values::Keep);
    assert_eq!(r.result_rows, 20);
    assert_eq!(r.on_error, Some(RecordingFailure::Continue));
}

#[test]
fn recording_settings_errors_name_the_line_and_the_choices() {
    for (line, column, needle) in [
        ("bind_values = \"sometimes\"", 15, "\"redact\" or \"keep\""),
        ("result_rows = 100000", 15, "between 0 and 10000"),
        (
            "on_error = \"ignore\"",
            12,
            "\"fail-closed\" or \"continue\"",
        ),
        ("rows = 1", 1, "unknown field"),
    ] {
        let text = format!("{WORKLOAD}[workload.recording]\n{line}\n");
        only_error(
            &[("w.toml", &text), ("t.toml", TARGET)],
            ("w.toml", 7, column),
            needle,
        );
    }
}
