//! What approvers see of a statement, from the policy's verdict on it. Pure.
//!
//! Kinds, operations, tables, the rules needing approval with the effects they apply to, and
//! the normalised text (literals replaced by `?`) — never a literal value.

use sha2::{Digest as _, Sha256};

use super::book::{EffectRef, RuleNeed, StatementSummary};
use crate::sql::{Decision, EffectVerdict, Object, Prepared, Verdict, fingerprint};

/// Longest normalised text kept (longer texts are cut, with `…`).
pub const MAX_TEXT: usize = 2000;

/// The summary of a message (a simple Query's or a Parse's text) whose decision needs
/// approval. Effects of `EXECUTE` statements are those of their parameters only, so a message
/// with an `EXECUTE` is not grantable.
pub fn summarize(verdict: &Verdict, sql: &str) -> StatementSummary {
    let statements = verdict.statements();
    let mut summary = StatementSummary {
        kinds: statements
            .iter()
            .map(|s| s.classification.kind.clone())
            .collect(),
        grantable: !statements
            .iter()
            .any(|s| matches!(s.classification.prepared, Prepared::Execute(_))),
        ..StatementSummary::default()
    };
    for s in statements {
        for e in &s.classification.effects {
            if !summary.operations.contains(&e.operation) {
                summary.operations.push(e.operation);
            }
            if let Object::Named(_, name) = &e.object {
                let name = name.to_string();
                if !summary.tables.contains(&name) {
                    summary.tables.push(name);
                }
            }
        }
        if let Some(need) = rule_need(&s.decision, s.effects.iter().map(effect_ref).collect()) {
            summary.needs.push(need);
        }
    }
    // An EXECUTE of a prepared statement needing approval: its rule, effects unknown.
    if let Some(need) = rule_need(verdict.decision(), Vec::new())
        && !summary.needs.iter().any(|n| n.rule == need.rule)
    {
        summary.grantable = false;
        summary.needs.push(need);
    }
    if let Some(f) = fingerprint(sql) {
        summary.digest = Some(digest(f.as_str()));
        summary.text = Some(cut(f.to_string()));
    }
    summary
}

/// The summary of a remembered decision (Bind/Execute of a prepared statement), when only the
/// decision and the statement kinds are known: not grantable.
pub fn summarize_decision(decision: &Decision, kinds: &[String]) -> StatementSummary {
    StatementSummary {
        kinds: kinds.to_vec(),
        needs: rule_need(decision, Vec::new()).into_iter().collect(),
        grantable: false,
        ..StatementSummary::default()
    }
}

fn rule_need(decision: &Decision, effects: Vec<EffectRef>) -> Option<RuleNeed> {
    let Decision::NeedsApproval {
        rule,
        approvers,
        groups,
        timeout,
    } = decision
    else {
        return None;
    };
    Some(RuleNeed {
        rule: rule.name.clone(),
        ruleset: rule.source.as_ref().map(ToString::to_string),
        approvers: *approvers,
        groups: groups.clone(),
        timeout: *timeout,
        effects,
    })
}

fn effect_ref(e: &EffectVerdict) -> EffectRef {
    EffectRef {
        operation: e.effect.operation,
        objects: e
            .candidates
            .iter()
            .map(|q| (q.schema.clone().unwrap_or_default(), q.name.clone()))
            .collect(),
        shown: e.effect.to_string(),
    }
}

fn digest(text: &str) -> String {
    let hash = Sha256::digest(text.as_bytes());
    hash[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn cut(mut text: String) -> String {
    if text.len() > MAX_TEXT {
        let mut end = MAX_TEXT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::policy::{Operation, parse_sources};
    use crate::sql::{AccessControl, NoPreparedStatements};

    fn control() -> AccessControl {
        let policy = r#"
[[workload]]
name = "w"
targets = ["db"]

[[workload.access]]
target = "db"
search_path = ["public", "staging"]
allow = [
    { name = "all", operations = ["read", "write"], tables = ["public.*", "staging.*"] },
]
approve = [
    { name = "bulk", operations = ["bulk_write"], tables = ["staging.*"], approvers = 1, groups = ["dba"], timeout = "10m" },
]

[[target]]
name = "db"
protocol = "postgres"
addresses = ["127.0.0.1:5432"]
[target.credentials]
username = "u"
password = { env = "PW" }
"#;
        let set = parse_sources(&[(PathBuf::from("p.toml"), policy.to_string())]).unwrap();
        let w = &set.workloads[0];
        AccessControl::new(&w.name, "db", w.access_for("db"))
    }

    #[test]
    fn a_bulk_delete_is_summarized_without_literals() {
        let c = control();
        let sql = "DELETE FROM staging.events WHERE 'secret-value' = 'secret-value'";
        let verdict = c.decide_uncached(sql, &NoPreparedStatements);
        assert!(verdict.decision().needs_approval());
        let s = summarize(&verdict, sql);
        assert_eq!(s.kinds, ["DELETE"]);
        assert_eq!(s.tables, ["staging.events"]);
        assert!(s.operations.contains(&Operation::BulkWrite));
        assert_eq!(s.needs.len(), 1);
        assert_eq!(s.needs[0].rule, "bulk");
        assert_eq!(s.needs[0].groups, ["dba"]);
        assert!(
            s.needs[0]
                .effects
                .iter()
                .any(|e| e.operation == Operation::BulkWrite
                    && e.objects == [("staging".to_string(), "events".to_string())])
        );
        assert!(s.grantable);
        let text = s.text.unwrap();
        assert!(!text.contains("secret"), "{text}");
        assert!(text.contains('?'), "{text}");
        assert_eq!(s.digest.unwrap().len(), 16);
    }

    #[test]
    fn unqualified_names_keep_every_candidate() {
        let c = control();
        let sql = "DELETE FROM events";
        let verdict = c.decide_uncached(sql, &NoPreparedStatements);
        let s = summarize(&verdict, sql);
        let objects: Vec<_> = s.needs[0].effects.iter().map(|e| e.objects.len()).collect();
        assert!(objects.iter().all(|&n| n == 2), "{:?}", s.needs[0].effects);
    }

    #[test]
    fn a_remembered_decision_is_not_grantable() {
        let c = control();
        let verdict = c.decide_uncached("DELETE FROM staging.events", &NoPreparedStatements);
        let s = summarize_decision(verdict.decision(), &["DELETE".into()]);
        assert_eq!(s.needs.len(), 1);
        assert!(!s.grantable);
    }

    #[test]
    fn long_texts_are_cut_on_a_char_boundary() {
        let long = "é".repeat(MAX_TEXT);
        let cut = cut(long);
        assert!(cut.len() <= MAX_TEXT + '…'.len_utf8());
        assert!(cut.ends_with('…'));
    }
}
