//! SQL statements judged against a workload's access rules for a target. Pure.
//!
//! - [`classify()`]: SQL text -> one [`Classification`] per statement, from PostgreSQL's own
//!   grammar (libpg_query, through the `pg_query` crate), by effect: which operations
//!   ([`Operation`]) on which objects, which functions are called, what is forbidden
//!   whatever the policy says. Never by regex or first keyword: comments, case, quoting,
//!   Unicode escapes, dollar quoting and whitespace cannot change a classification.
//! - [`AccessControl`]: the access rules of one (workload, target) pair
//!   ([`crate::policy::Access`]) with a decision cache; [`AccessControl::decide`] turns a
//!   message's SQL into a [`Verdict`]: the message's [`Decision`] (allow / deny / needs
//!   approval, with the rule that made it) and the per-statement details.
//! - [`SqlPolicy`]: an [`AccessControl`] for every (workload, postgres target) pair of a
//!   policy set.
//! - [`Explanation`]: the classification and decision of a text, for `agent explain`.
//!
//! How the proxy uses it (decisions are made on whole messages):
//! - simple Query: [`AccessControl::decide`] on its text; a denied statement denies the
//!   whole message (nothing of it runs): answer with [`Verdict::denial`] (SQLSTATE 42501);
//!   apply [`Verdict::prepared_changes`] once the message ran;
//! - Parse: decide its text; remember [`Verdict::decision_to_remember`] under the statement
//!   name (in a [`PreparedStatements`] table, shared with SQL-level PREPAREs); refuse Bind
//!   and Execute of a denied statement; forget on Close, DEALLOCATE and DISCARD ALL;
//! - FunctionCall: [`AccessControl::function_call`] (always denied).
//!
//! Caching: the key is a [`Fingerprint`], a cheap normalisation of the text (no parse) that
//! ignores literal values; classifications never depend on literal values, so every text
//! with a given fingerprint gets the same evaluation. A hot statement is parsed once per
//! access table (until evicted). EXECUTE statements are resolved against the session's
//! prepared statements after the cache, so the cache holds only session-independent data.

mod cache;
mod classify;
mod decide;
mod effects;
mod explain;
mod fingerprint;
mod walk;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

pub use cache::{BoundedCache, CacheStats};
pub use classify::{ParseError, classify};
pub use decide::{
    DANGEROUS_FUNCTIONS, DENIED_SQLSTATE, Decision, Denial, EffectVerdict, Evaluation,
    NoPreparedStatements, Outcome, PreparedStatements, RuleRef, StatementVerdict, Verdict,
    is_dangerous_function,
};
pub use effects::{
    Classification, Effect, Forbidden, Object, ObjectKind, Operation, Prepared, QualifiedName,
};
pub use explain::Explanation;
pub use fingerprint::{Fingerprint, MAX_FINGERPRINT_INPUT, fingerprint};

use crate::policy::{Access, PolicySet, Protocol};

/// Default number of cached evaluations per access table.
pub const DEFAULT_CACHE_CAPACITY: usize = 4096;
/// Default bound on the total length of the cached fingerprints per access table (the
/// evaluations themselves are small: a few hundred bytes per statement).
pub const DEFAULT_CACHE_KEY_BYTES: usize = 4 << 20;

/// The SQL access rules of one workload for one target, with a decision cache.
/// Cheap to share (`Arc`) between the sessions of that pair; thread-safe.
pub struct AccessControl {
    workload: String,
    target: String,
    /// `None`: the workload has no access rules for the target, every statement is denied.
    access: Option<Access>,
    cache: BoundedCache<Arc<Evaluation>>,
}

impl AccessControl {
    /// Rules `access` (or none: deny everything) of `workload` for `target`.
    pub fn new(workload: &str, target: &str, access: Option<&Access>) -> Self {
        Self::with_cache_capacity(workload, target, access, DEFAULT_CACHE_CAPACITY)
    }

    pub fn with_cache_capacity(
        workload: &str,
        target: &str,
        access: Option<&Access>,
        capacity: usize,
    ) -> Self {
        Self {
            workload: workload.to_string(),
            target: target.to_string(),
            access: access.cloned(),
            cache: BoundedCache::new(capacity, DEFAULT_CACHE_KEY_BYTES),
        }
    }

    pub fn workload(&self) -> &str {
        &self.workload
    }

    pub fn target(&self) -> &str {
        &self.target
    }

    pub fn access(&self) -> Option<&Access> {
        self.access.as_ref()
    }

    /// Decides a message's SQL (a simple Query's text, or a Parse's), using the cache when
    /// the text has a fingerprint. `prepared` gives the decisions of the session's prepared
    /// statements, for EXECUTE.
    pub fn decide(&self, sql: &str, prepared: &dyn PreparedStatements) -> Verdict {
        let Some(key) = fingerprint(sql) else {
            return self.decide_uncached(sql, prepared);
        };
        if let Some(evaluation) = self.cache.get(&key) {
            return Verdict::new(evaluation, true).resolve(prepared);
        }
        let evaluation = self.evaluate(sql);
        // Unparseable texts are not cached: a parse error may depend on a literal's
        // content (an invalid escape), which the fingerprint does not see.
        let cacheable = !evaluation.statements.is_empty() || evaluation.decision.is_allowed();
        if cacheable {
            self.cache.insert(key, Arc::clone(&evaluation));
        }
        Verdict::new(evaluation, false).resolve(prepared)
    }

    /// Like [`AccessControl::decide`], always parsing (and not touching the cache).
    pub fn decide_uncached(&self, sql: &str, prepared: &dyn PreparedStatements) -> Verdict {
        Verdict::new(self.evaluate(sql), false).resolve(prepared)
    }

    /// The decision for a FunctionCall ('F') message: always denied (it names a function by
    /// OID, which the agent cannot judge).
    pub fn function_call(&self) -> Decision {
        Decision::Deny {
            rule: RuleRef::builtin("builtin:function-call"),
            reason: "the FunctionCall protocol message is not allowed: it calls a function by \
                     its OID, which the agent cannot judge"
                .into(),
            hint: "call the function with SELECT instead".into(),
        }
    }

    /// Hits and misses of the decision cache.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    fn evaluate(&self, sql: &str) -> Arc<Evaluation> {
        let judge = decide::Judge {
            workload: &self.workload,
            target: &self.target,
            access: self.access.as_ref(),
        };
        Arc::new(match classify(sql) {
            Ok(classifications) => judge.evaluate(classifications),
            Err(e) => judge.unparseable(&e),
        })
    }
}

impl std::fmt::Debug for AccessControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessControl")
            .field("workload", &self.workload)
            .field("target", &self.target)
            .field("has_rules", &self.access.is_some())
            .finish_non_exhaustive()
    }
}

/// An [`AccessControl`] per (workload, postgres target) pair of a policy set. Build a new one
/// when the policy set changes (its caches start empty).
#[derive(Debug, Default)]
pub struct SqlPolicy {
    pairs: HashMap<(String, String), Arc<AccessControl>>,
}

impl SqlPolicy {
    pub fn new(set: &PolicySet) -> Self {
        let mut pairs = HashMap::new();
        for w in &set.workloads {
            for t in &w.targets {
                let postgres = set
                    .target(t)
                    .is_some_and(|t| t.protocol == Protocol::Postgres);
                if postgres {
                    let control = AccessControl::new(&w.name, t, w.access_for(t));
                    pairs.insert((w.name.clone(), t.clone()), Arc::new(control));
                }
            }
        }
        Self { pairs }
    }

    /// The rules of `workload` for `target`; `None` if the workload does not reach that
    /// postgres target.
    pub fn access(&self, workload: &str, target: &str) -> Option<Arc<AccessControl>> {
        self.pairs
            .get(&(workload.to_string(), target.to_string()))
            .cloned()
    }
}
