//! Classification cases: one test per kind of statement or trick.

use super::*;

fn one(sql: &str) -> Classification {
    let mut all = classify(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    assert_eq!(all.len(), 1, "{sql}: {all:#?}");
    all.remove(0)
}

/// The effects as `op object` strings.
fn effects(sql: &str) -> Vec<String> {
    one(sql).effects.iter().map(Effect::to_string).collect()
}

fn functions(sql: &str) -> Vec<String> {
    one(sql).functions.iter().map(ToString::to_string).collect()
}

#[track_caller]
fn assert_effects(sql: &str, expected: &[&str]) {
    assert_eq!(effects(sql), expected, "{sql}");
}

#[test]
fn select_reads_every_table_it_mentions() {
    assert_effects("SELECT * FROM orders WHERE id = 1", &["read orders"]);
    assert_effects(
        "select o.id from public.orders o join staging.events e on e.order_id = o.id \
         left join \"Audit\".\"Log\" l using (id)",
        &[
            "read public.orders",
            "read staging.events",
            "read \"Audit\".\"Log\"",
        ],
    );
    assert_effects(
        "SELECT (SELECT max(x) FROM secret.s), 1 FROM a WHERE id IN (SELECT id FROM b) \
         UNION SELECT 1, 2 FROM c",
        &["read secret.s", "read a", "read b", "read c"],
    );
    assert_eq!(one("SELECT 1").kind, "SELECT");
    assert!(one("SELECT now()").effects.is_empty());
}

#[test]
fn names_are_normalised_like_the_server_does() {
    assert_effects("SELECT * FROM Staging.Events", &["read staging.events"]);
    assert_effects(
        "SELECT * FROM \"Staging\".\"Events\"",
        &["read \"Staging\".\"Events\""],
    );
    assert_effects("SELECT * FROM U&\"d\\0061ta\"", &["read data"]);
    assert_effects("select * from mydb.public.t", &["read public.t"]);
    assert_effects("CREATE TEMP TABLE tmp (a int)", &["ddl pg_temp.tmp"]);
}

#[test]
fn cte_names_are_not_tables_but_their_bodies_are_classified() {
    assert_effects(
        "WITH d AS (DELETE FROM staging.events WHERE id = 1 RETURNING *) SELECT * FROM d",
        &["write staging.events"],
    );
    assert_effects(
        "WITH a AS (SELECT * FROM t1), b AS (SELECT * FROM a) SELECT * FROM b",
        &["read t1"],
    );
    // Non-recursive: a CTE does not see itself nor later ones, so `later` is a table here.
    assert_effects(
        "WITH a AS (SELECT * FROM later), later AS (SELECT 1) SELECT * FROM a",
        &["read later"],
    );
    // Recursive: it does.
    assert_effects(
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) \
         SELECT * FROM r",
        &[],
    );
    // A qualified name is never a CTE.
    assert_effects(
        "WITH d AS (SELECT 1) SELECT * FROM public.d",
        &["read public.d"],
    );
    // Out of its scope, the name is a table again.
    assert_effects(
        "SELECT * FROM (WITH d AS (SELECT 1) SELECT * FROM d) x, d",
        &["read d"],
    );
    // A DML target is never a CTE.
    assert_effects(
        "WITH t AS (SELECT 1) INSERT INTO t SELECT * FROM t",
        &["write t"],
    );
}

#[test]
fn writes_and_their_reads() {
    assert_effects(
        "INSERT INTO staging.events (id) SELECT id FROM public.orders",
        &["write staging.events", "read public.orders"],
    );
    assert_effects(
        "INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET v = excluded.v",
        &["write t"],
    );
    assert_effects(
        "UPDATE staging.events e SET v = o.v FROM public.orders o WHERE e.id = o.id",
        &["write staging.events", "read public.orders"],
    );
    assert_effects(
        "DELETE FROM staging.events USING public.orders o WHERE events.id = o.id",
        &["write staging.events", "read public.orders"],
    );
    assert_effects(
        "INSERT INTO a SELECT * FROM b RETURNING (SELECT count(*) FROM c)",
        &["write a", "read b", "read c"],
    );
}

#[test]
fn delete_and_update_without_a_row_condition_are_bulk() {
    for sql in [
        "DELETE FROM t",
        "DELETE FROM t WHERE true",
        "DELETE FROM t WHERE 1 = 1",
        "DELETE FROM t WHERE 'a' = 'a'",
        "DELETE FROM t WHERE $1",
        "DELETE FROM t WHERE id = 5 OR 1 = 1",
        "DELETE FROM t WHERE NOT false",
        "DELETE FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.x = 1)",
        "DELETE FROM t WHERE (SELECT count(*) FROM u) > 0",
        "DELETE FROM t x USING u WHERE u.a = 1",
        "UPDATE t SET a = 1",
        "UPDATE t SET a = 1 WHERE now() > '2020-01-01'",
        "TRUNCATE t",
    ] {
        let c = one(sql);
        assert!(c.bulk, "{sql} should be bulk: {c}");
        assert!(
            c.effects
                .iter()
                .any(|e| e.operation == Operation::BulkWrite && e.object.to_string() == "t"),
            "{sql}: {c}"
        );
        assert!(c.operations().contains(&Operation::Write), "{sql}");
    }
    for sql in [
        "DELETE FROM t WHERE id = 1",
        "DELETE FROM t WHERE t.id = $1",
        "DELETE FROM t x WHERE x.id = 1",
        "DELETE FROM t WHERE id = 1 AND true",
        "DELETE FROM t WHERE id = 1 OR id = 2",
        "DELETE FROM t WHERE id IN (SELECT id FROM u)",
        "DELETE FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.tid = t.id)",
        "DELETE FROM t WHERE CURRENT OF c",
        "UPDATE t SET a = 1 WHERE a IS NULL",
    ] {
        let c = one(sql);
        assert!(!c.bulk, "{sql} should not be bulk: {c}");
        assert!(!c.operations().contains(&Operation::BulkWrite), "{sql}");
    }
}

#[test]
fn merge_is_a_write_and_bulk_when_its_actions_do_not_depend_on_rows() {
    let sql = "MERGE INTO staging.events t USING public.orders s ON t.id = s.id \
               WHEN MATCHED THEN UPDATE SET v = s.v WHEN NOT MATCHED THEN INSERT VALUES (s.id)";
    assert_effects(sql, &["write staging.events", "read public.orders"]);
    assert!(!one(sql).bulk);
    let bulk = "MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE";
    assert!(one(bulk).bulk);
    let by_source = "MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED BY SOURCE THEN DELETE";
    assert!(one(by_source).bulk);
    let guarded = "MERGE INTO t USING s ON true WHEN MATCHED AND t.id = 1 THEN DELETE";
    assert!(!one(guarded).bulk);
    assert_eq!(one(bulk).kind, "MERGE");
}

#[test]
fn select_into_and_create_table_as_create_and_write() {
    assert_effects(
        "SELECT * INTO staging.copy FROM public.orders",
        &[
            "ddl staging.copy",
            "write staging.copy",
            "read public.orders",
        ],
    );
    assert_eq!(one("SELECT 1 INTO x").kind, "SELECT INTO");
    assert_effects(
        "CREATE TABLE staging.copy AS SELECT * FROM public.orders",
        &[
            "read public.orders",
            "ddl staging.copy",
            "write staging.copy",
        ],
    );
    assert_effects(
        "CREATE MATERIALIZED VIEW mv AS SELECT * FROM t",
        &["read t", "ddl mv", "write mv"],
    );
    assert_effects(
        "CREATE VIEW v AS SELECT * FROM secret",
        &["ddl v", "read secret"],
    );
}

#[test]
fn explain_reads_unless_it_analyzes() {
    assert_effects("EXPLAIN DELETE FROM t", &["read t"]);
    assert!(!one("EXPLAIN DELETE FROM t").bulk);
    assert_effects(
        "EXPLAIN ANALYZE DELETE FROM t",
        &["write t", "bulk_write t"],
    );
    assert_effects(
        "EXPLAIN (ANALYZE, BUFFERS) DELETE FROM t",
        &["write t", "bulk_write t"],
    );
    // A literal never changes a decision, so any ANALYZE option counts as ANALYZE.
    assert_effects(
        "EXPLAIN (ANALYZE false) DELETE FROM t",
        &["write t", "bulk_write t"],
    );
    assert_effects(
        "EXPLAIN (ANALYZE 'off') DELETE FROM t",
        &["write t", "bulk_write t"],
    );
    assert_effects(
        "EXPLAIN ANALYZE WITH d AS (DELETE FROM t WHERE id = 1 RETURNING *) SELECT * FROM d",
        &["write t"],
    );
    assert_eq!(one("EXPLAIN SELECT 1").kind, "EXPLAIN");
}

#[test]
fn copy_directions_and_destinations() {
    assert_effects(
        "COPY staging.events TO STDOUT",
        &["copy_out staging.events", "read staging.events"],
    );
    assert_effects(
        "COPY staging.events FROM STDIN (FORMAT csv)",
        &["copy_in staging.events", "write staging.events"],
    );
    assert_effects(
        "COPY (SELECT * FROM a JOIN b USING (id)) TO STDOUT",
        &["read a", "copy_out a", "read b", "copy_out b"],
    );
    assert_effects(
        "COPY (DELETE FROM t WHERE id = 1 RETURNING *) TO STDOUT",
        &["write t", "copy_out t"],
    );
    assert_eq!(one("COPY t TO STDOUT").forbidden, vec![]);
    assert_eq!(
        one("COPY t TO PROGRAM 'curl x'").forbidden,
        vec![Forbidden::CopyProgram]
    );
    assert_eq!(
        one("COPY t FROM PROGRAM 'id'").forbidden,
        vec![Forbidden::CopyProgram]
    );
    assert_eq!(
        one("COPY t TO '/tmp/x'").forbidden,
        vec![Forbidden::CopyFile]
    );
    assert_eq!(
        one("COPY t FROM '/etc/passwd'").forbidden,
        vec![Forbidden::CopyFile]
    );
    assert_eq!(
        one("COPY (SELECT 1) TO PROGRAM 'x'").forbidden,
        vec![Forbidden::CopyProgram]
    );
}

#[test]
fn ddl_of_any_object_kind() {
    assert_effects(
        "DROP TABLE staging.a, b CASCADE",
        &["ddl staging.a", "ddl b", "ddl CASCADE to dependent objects"],
    );
    assert_effects("DROP TABLE staging.a RESTRICT", &["ddl staging.a"]);
    assert_effects("DROP VIEW IF EXISTS v", &["ddl v"]);
    assert_effects("DROP INDEX CONCURRENTLY i", &["ddl i"]);
    assert_effects("DROP FUNCTION f(int), s.g()", &["ddl f()", "ddl s.g()"]);
    assert_effects(
        "DROP SCHEMA audit CASCADE",
        &["ddl schema audit", "ddl CASCADE to dependent objects"],
    );
    assert_effects(
        "ALTER TABLE t DROP COLUMN c CASCADE",
        &["ddl t", "ddl CASCADE to dependent objects"],
    );
    assert_effects(
        "TRUNCATE t CASCADE",
        &[
            "write CASCADE to dependent objects",
            "bulk_write CASCADE to dependent objects",
            "ddl CASCADE to dependent objects",
            "write t",
            "bulk_write t",
            "ddl t",
        ],
    );
    assert_effects("DROP EXTENSION dblink", &["ddl extension dblink"]);
    assert_effects("DROP TYPE s.mood", &["ddl s.mood"]);
    assert_effects("DROP TRIGGER trg ON audit.log", &["ddl audit.log"]);
    assert_effects("DROP POLICY p ON t", &["ddl t"]);
    assert_effects("DROP SEQUENCE s", &["ddl s"]);
    assert_effects("DROP MATERIALIZED VIEW mv", &["ddl mv"]);
    assert_eq!(
        one("DROP MATERIALIZED VIEW mv").kind,
        "DROP MATERIALIZED VIEW"
    );
    assert_effects(
        "CREATE TABLE t (id int REFERENCES o(id), LIKE src)",
        &["ddl t", "ddl o", "read src"],
    );
    assert_effects(
        "CREATE TABLE c PARTITION OF p FOR VALUES IN (1)",
        &["ddl c", "ddl p"],
    );
    assert_effects(
        "CREATE INDEX ON staging.events (id)",
        &["ddl staging.events"],
    );
    assert_effects("ALTER TABLE t ADD COLUMN c int", &["ddl t"]);
    assert_effects("ALTER TABLE t RENAME TO u", &["ddl u", "ddl t"]);
    assert_effects(
        "ALTER TABLE s.t SET SCHEMA audit",
        &["ddl audit.t", "ddl s.t"],
    );
    assert_effects("COMMENT ON TABLE t IS 'x'", &["ddl t"]);
    assert_effects("COMMENT ON COLUMN s.t.c IS 'x'", &["ddl s.t"]);
    assert_effects("CREATE SCHEMA s", &["ddl schema s"]);
    assert_effects(
        "CREATE FUNCTION s.f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$",
        &["ddl s.f()"],
    );
    assert_effects(
        "CREATE FUNCTION f() RETURNS void LANGUAGE sql BEGIN ATOMIC DELETE FROM audit.log; END",
        &["ddl f()", "write audit.log", "bulk_write audit.log"],
    );
    assert_effects(
        "CREATE RULE r AS ON INSERT TO t DO ALSO DELETE FROM audit.log",
        &["ddl t", "write audit.log", "bulk_write audit.log"],
    );
    assert_eq!(
        functions("CREATE TRIGGER trg AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION s.f()"),
        ["s.f"]
    );
    assert_effects(
        "TRUNCATE TABLE a, b",
        &[
            "write a",
            "bulk_write a",
            "ddl a",
            "write b",
            "bulk_write b",
            "ddl b",
        ],
    );
    // TRUNCATE without TABLE is the same statement.
    assert_eq!(effects("TRUNCATE a"), effects("TRUNCATE TABLE a"));
    assert_eq!(one("TRUNCATE a").kind, "TRUNCATE TABLE");
}

#[test]
fn privileges_and_administration() {
    assert_effects(
        "GRANT SELECT ON staging.events TO bob",
        &["admin staging.events"],
    );
    assert_effects("REVOKE ALL ON SCHEMA s FROM bob", &["admin -"]);
    assert_effects("GRANT admin TO bob", &["admin -"]);
    assert_effects("CREATE ROLE x LOGIN", &["admin -"]);
    assert_effects("ALTER ROLE x SUPERUSER", &["admin -"]);
    assert_effects("ALTER SYSTEM SET work_mem = '1GB'", &["admin -"]);
    assert_effects("ALTER TABLE t OWNER TO bob", &["ddl t", "admin t"]);
    assert_effects("ALTER FUNCTION f() OWNER TO bob", &["admin f()"]);
    assert_effects("CREATE EXTENSION dblink", &["admin -"]);
    assert_effects("LOAD 'plugin'", &["admin -"]);
    assert_effects("PREPARE TRANSACTION 'x'", &["admin -"]);
    assert_eq!(one("GRANT SELECT ON t TO x").kind, "GRANT");
    assert_eq!(one("REVOKE SELECT ON t FROM x").kind, "REVOKE");
}

#[test]
fn maintenance_and_locks() {
    assert_effects("VACUUM", &["maintenance -"]);
    assert_effects(
        "VACUUM (ANALYZE) staging.events, t",
        &["maintenance staging.events", "maintenance t"],
    );
    assert_effects("ANALYZE t", &["maintenance t"]);
    assert_eq!(one("ANALYZE t").kind, "ANALYZE");
    assert_effects("CLUSTER t USING i", &["maintenance t"]);
    assert_effects("REINDEX TABLE t", &["maintenance t"]);
    assert_effects(
        "REINDEX DATABASE db",
        &["maintenance database or schema db"],
    );
    assert_effects(
        "REFRESH MATERIALIZED VIEW CONCURRENTLY mv",
        &["maintenance mv"],
    );
    assert_effects("CHECKPOINT", &["maintenance -"]);
    assert_effects(
        "LOCK TABLE a, b IN ACCESS EXCLUSIVE MODE",
        &["lock a", "lock b"],
    );
    assert_effects("LOCK a", &["lock a"]);
}

#[test]
fn row_locks_write() {
    assert_effects(
        "SELECT * FROM jobs WHERE state = 'new' FOR UPDATE SKIP LOCKED",
        &["read jobs", "write jobs"],
    );
    assert_effects("SELECT * FROM jobs FOR SHARE", &["read jobs", "write jobs"]);
}

#[test]
fn session_statements_are_harmless() {
    for sql in [
        "BEGIN",
        "START TRANSACTION ISOLATION LEVEL SERIALIZABLE",
        "COMMIT",
        "ROLLBACK",
        "SAVEPOINT a",
        "RELEASE SAVEPOINT a",
        "ROLLBACK TO SAVEPOINT a",
        "SHOW work_mem",
        "SHOW ALL",
        "SET application_name = 'x'",
        "SET LOCAL statement_timeout = '5s'",
        "SET TIME ZONE 'UTC'",
        "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
        "SET enable_seqscan = off",
        "RESET ALL",
        "RESET ROLE",
        "RESET search_path",
        "SET SESSION AUTHORIZATION DEFAULT",
        "DISCARD ALL",
        "DISCARD TEMP",
        "DEALLOCATE p",
        "DEALLOCATE ALL",
        "CLOSE c",
        "FETCH 10 FROM c",
        "MOVE NEXT IN c",
        "UNLISTEN *",
        "SET CONSTRAINTS ALL DEFERRED",
    ] {
        let c = one(sql);
        assert!(c.harmless, "{sql}: {c}");
        assert!(c.effects.is_empty(), "{sql}: {c}");
        assert!(c.forbidden.is_empty(), "{sql}: {c}");
    }
    assert_eq!(
        one("DEALLOCATE p").prepared,
        Prepared::Deallocate(Some("p".into()))
    );
    assert_eq!(one("DEALLOCATE ALL").prepared, Prepared::Deallocate(None));
    assert_eq!(one("DISCARD ALL").prepared, Prepared::Deallocate(None));
}

#[test]
fn sensitive_settings() {
    assert_effects("SET ROLE admin", &["set_role -"]);
    assert_effects("SET ROLE NONE", &["set_role -"]);
    assert_effects("SET SESSION AUTHORIZATION bob", &["set_role -"]);
    assert_effects("SET search_path = evil, public", &["search_path -"]);
    assert_effects("SET SCHEMA 'evil'", &["search_path -"]);
    assert_effects("SET LOCAL search_path TO evil", &["search_path -"]);
    assert_effects("SET app.tenant_id = '42'", &["set setting app.tenant_id"]);
    assert_effects(
        "SET session_replication_role = replica",
        &["set setting session_replication_role"],
    );
    for sql in [
        "SET standard_conforming_strings = off",
        "SET backslash_quote = on",
        "SET client_encoding = 'SJIS'",
        "SET NAMES 'GBK'",
    ] {
        assert_eq!(one(sql).forbidden, vec![Forbidden::LexerSetting], "{sql}");
    }
    assert!(one("RESET client_encoding").harmless);
}

#[test]
fn opaque_code_calls_and_notifications() {
    assert_effects(
        "CALL staging.refresh_stats(1)",
        &["call staging.refresh_stats()"],
    );
    assert_eq!(
        functions("CALL staging.refresh_stats(now())"),
        ["staging.refresh_stats", "now"]
    );
    assert_effects("DO $$ BEGIN DELETE FROM t; END $$", &["do -"]);
    assert_effects("DO LANGUAGE plpgsql 'BEGIN NULL; END'", &["do -"]);
    assert_effects("LISTEN jobs", &["listen channel jobs"]);
    assert_effects("NOTIFY jobs, 'x'", &["notify channel jobs"]);
    assert_effects("SELECT pg_notify('jobs', 'x')", &["notify -"]);
}

#[test]
fn functions_are_found_anywhere() {
    for (sql, expected) in [
        ("SELECT pg_read_file('/etc/passwd')", "pg_read_file"),
        (
            "SELECT * FROM t WHERE a = (SELECT pg_read_file('x'))",
            "pg_read_file",
        ),
        (
            "WITH x AS (SELECT pg_ls_dir('.')) SELECT * FROM x",
            "pg_ls_dir",
        ),
        ("SELECT upper(lower(pg_read_file('x')))", "pg_read_file"),
        (
            "SELECT * FROM dblink('host=x', 'select 1') AS t(a int)",
            "dblink",
        ),
        ("SELECT dblink_exec('x', 'drop table t')", "dblink_exec"),
        ("SELECT lo_export(1, '/tmp/x')", "lo_export"),
        ("SELECT set_config('role', 'admin', false)", "set_config"),
        (
            "SELECT pg_catalog.pg_read_file('x')",
            "pg_catalog.pg_read_file",
        ),
        ("INSERT INTO t VALUES (pg_read_file('x'))", "pg_read_file"),
        (
            "UPDATE t SET a = 1 WHERE id = 1 RETURNING pg_read_file('x')",
            "pg_read_file",
        ),
        (
            "CREATE TABLE t (a text DEFAULT pg_read_file('x'))",
            "pg_read_file",
        ),
        ("COPY (SELECT pg_read_file('x')) TO STDOUT", "pg_read_file"),
        (
            "SELECT count(*) FILTER (WHERE pg_read_file('x') IS NULL) FROM t",
            "pg_read_file",
        ),
        (
            "SELECT sum(a) OVER (ORDER BY pg_read_file('x')) FROM t",
            "pg_read_file",
        ),
        ("EXECUTE p(pg_read_file('x'))", "pg_read_file"),
        ("SELECT * FROM ROWS FROM (pg_ls_dir('.')) AS x", "pg_ls_dir"),
        ("CALL p(pg_terminate_backend(1))", "pg_terminate_backend"),
        ("SELECT \"PG_READ_FILE\"('x')", "\"PG_READ_FILE\""),
    ] {
        let found = functions(sql);
        assert!(found.iter().any(|f| f == expected), "{sql}: {found:?}");
    }
}

#[test]
fn prepared_statements() {
    let c = one("PREPARE p(int) AS DELETE FROM t WHERE id = $1");
    assert_eq!(c.prepared, Prepared::Prepare("p".into()));
    assert_eq!(
        c.effects.iter().map(Effect::to_string).collect::<Vec<_>>(),
        ["write t"]
    );
    assert_eq!(one("EXECUTE p(1)").prepared, Prepared::Execute("p".into()));
    assert_eq!(
        one("CREATE TABLE x AS EXECUTE p").prepared,
        Prepared::Execute("p".into())
    );
    assert_eq!(
        one("EXPLAIN ANALYZE EXECUTE p").prepared,
        Prepared::Execute("p".into())
    );
}

#[test]
fn cursors_are_judged_by_their_query() {
    assert_effects(
        "DECLARE c CURSOR FOR SELECT * FROM secret",
        &["read secret"],
    );
    assert_effects(
        "DECLARE c CURSOR FOR SELECT * FROM t FOR UPDATE",
        &["read t", "write t"],
    );
}

#[test]
fn multi_statement_texts_give_one_classification_each() {
    let all = classify("SELECT 1; DELETE FROM t; ; COMMIT").unwrap();
    let kinds: Vec<&str> = all.iter().map(|c| c.kind.as_str()).collect();
    assert_eq!(kinds, ["SELECT", "DELETE", "COMMIT"]);
    assert!(classify("").unwrap().is_empty());
    assert!(classify(" -- nothing\n /* at all */ ;").unwrap().is_empty());
}

#[test]
fn unparseable_text_is_an_error() {
    for sql in [
        "SELEC 1",
        "DELETE FROM",
        "SELECT 'unterminated",
        "SELECT 1.FROM t",
        "\0",
    ] {
        assert!(classify(sql).is_err(), "{sql}");
    }
    let deep = format!("SELECT {}", vec!["1"; 200].join(" + "));
    let e = classify(&deep).unwrap_err();
    assert!(e.0.contains("nested too deeply"), "{e}");
    let fine = format!("SELECT {}", vec!["1"; 40].join(" + "));
    assert!(classify(&fine).is_ok());
}

#[test]
fn tricks_do_not_change_the_classification() {
    let plain = effects("DROP TABLE t");
    for sql in [
        "DROP/**/TABLE t",
        "drop table T",
        "DrOp\tTaBlE\n\"t\"",
        "DROP /* a /* nested */ comment */ TABLE t -- trailing",
        "DROP TABLE U&\"\\0074\"",
    ] {
        assert_eq!(effects(sql), plain, "{sql}");
    }
    // Keywords in literals are just text.
    assert_effects("SELECT 'DROP TABLE t; DELETE FROM t' FROM x", &["read x"]);
    assert_effects("SELECT $$;DROP TABLE t;$$ FROM x", &["read x"]);
    assert_effects("SELECT $a$ ' $a$ FROM x", &["read x"]);
    assert_effects("SELECT * FROM x -- WHERE id = 1\n", &["read x"]);
    assert!(one("DELETE FROM t -- WHERE id = 1").bulk);
}

#[test]
fn statement_kinds_read_like_command_tags() {
    for (sql, kind) in [
        ("ALTER TABLE t ADD c int", "ALTER TABLE"),
        ("ALTER VIEW v RENAME TO w", "ALTER VIEW"),
        ("CREATE PUBLICATION p FOR ALL TABLES", "CREATE PUBLICATION"),
        (
            "CREATE PROCEDURE p() LANGUAGE sql AS 'select 1'",
            "CREATE PROCEDURE",
        ),
        ("DROP FOREIGN TABLE f", "DROP FOREIGN TABLE"),
        (
            "IMPORT FOREIGN SCHEMA r FROM SERVER s INTO l",
            "IMPORT FOREIGN SCHEMA",
        ),
        (
            "CREATE AGGREGATE a (int) (sfunc = f, stype = int)",
            "CREATE AGGREGATE",
        ),
    ] {
        assert_eq!(one(sql).kind, kind, "{sql}");
    }
}
