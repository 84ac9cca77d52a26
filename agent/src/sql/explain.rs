//! `agent explain`: the classification and the decision of a text, for humans.

use std::fmt;

use super::AccessControl;
use super::decide::{Decision, Outcome, PreparedStatements, Verdict};
use super::effects::{Object, Prepared};
use super::fingerprint::{Fingerprint, fingerprint};

/// What the agent makes of a text for one workload and target (always evaluated afresh,
/// without the cache). Its `Display` is what `agent explain` prints, e.g.
///
/// ```text
/// workload     nightly-chunker
/// target       orders-db
/// fingerprint  delete from staging.events where id = ?
///
/// statement 1 of 1: DELETE FROM staging.events WHERE id = 42
///   kind       DELETE
///   effect     write staging.events               allowed by stage-writes (p.toml:14)
///   decision   ALLOW by stage-writes (p.toml:14)
///
/// decision: ALLOW by stage-writes (p.toml:14)
/// ```
#[derive(Debug, Clone)]
pub struct Explanation {
    pub workload: String,
    pub target: String,
    /// The cache key (`None`: the text is never cached, it is parsed each time).
    pub fingerprint: Option<Fingerprint>,
    /// The text of each statement, as split by the parser (empty if unparseable).
    pub statements: Vec<String>,
    pub verdict: Verdict,
}

impl Explanation {
    pub fn new(control: &AccessControl, sql: &str, prepared: &dyn PreparedStatements) -> Self {
        let statements = pg_query::split_with_parser(sql)
            .map(|parts| parts.iter().map(|s| s.trim().to_string()).collect())
            .unwrap_or_default();
        Self {
            workload: control.workload().to_string(),
            target: control.target().to_string(),
            fingerprint: fingerprint(sql),
            statements,
            verdict: control.decide_uncached(sql, prepared),
        }
    }

    pub fn decision(&self) -> &Decision {
        self.verdict.decision()
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "workload     {}", self.workload)?;
        writeln!(f, "target       {}", self.target)?;
        match &self.fingerprint {
            Some(key) => writeln!(f, "fingerprint  {key}")?,
            None => writeln!(f, "fingerprint  (none: this text is parsed every time)")?,
        }
        let total = self.verdict.statements().len();
        for (i, s) in self.verdict.statements().iter().enumerate() {
            let text = self.statements.get(i).map_or("", String::as_str);
            writeln!(f)?;
            writeln!(f, "statement {} of {total}: {}", i + 1, one_line(text, 100))?;
            let c = &s.classification;
            writeln!(f, "  kind       {}", c.kind)?;
            for e in &s.effects {
                let mut object = e.effect.object.to_string();
                if let Object::Named(_, q) = &e.effect.object
                    && q.schema.is_none()
                    && !e.candidates.is_empty()
                {
                    let names: Vec<String> = e.candidates.iter().map(ToString::to_string).collect();
                    object.push_str(&format!(" (as {})", names.join(" | ")));
                }
                let outcome = match &e.outcome {
                    Outcome::Allowed(rule) => format!("allowed by {rule}"),
                    Outcome::NeedsApproval(rule) => format!("needs approval: {rule}"),
                    Outcome::Denied(rule) => format!("denied by {rule}"),
                    Outcome::NotAllowed => "not allowed by any rule".to_string(),
                };
                let effect = format!("{} {object}", e.effect.operation);
                writeln!(f, "  effect     {effect:<40} {outcome}")?;
            }
            if c.effects.is_empty() {
                writeln!(f, "  effect     (none)")?;
            }
            if !c.functions.is_empty() {
                let names: Vec<String> = c.functions.iter().map(|n| format!("{n}()")).collect();
                writeln!(f, "  functions  {}", names.join(", "))?;
            }
            let mut flags: Vec<String> = Vec::new();
            if c.bulk {
                flags.push("bulk write".into());
            }
            if c.harmless {
                flags.push("harmless".into());
            }
            for forbidden in &c.forbidden {
                flags.push(format!("forbidden: {}", forbidden.rule_name()));
            }
            match &c.prepared {
                Prepared::None => {}
                Prepared::Prepare(name) => flags.push(format!("prepares `{name}`")),
                Prepared::Execute(name) => flags.push(format!("executes `{name}`")),
                Prepared::Deallocate(Some(name)) => flags.push(format!("deallocates `{name}`")),
                Prepared::Deallocate(None) => flags.push("deallocates all".into()),
            }
            if !flags.is_empty() {
                writeln!(f, "  flags      {}", flags.join(", "))?;
            }
            writeln!(f, "  decision   {}", s.decision)?;
            if let Some(remembered) = &s.prepared_decision {
                writeln!(f, "  executes   {remembered}")?;
            }
        }
        writeln!(f)?;
        let decision = self.verdict.decision();
        match self.verdict.deciding_statement() {
            Some(i) if total > 1 => writeln!(f, "decision: {decision} (statement {})", i + 1)?,
            _ => writeln!(f, "decision: {decision}")?,
        }
        if let Decision::Deny { hint, .. } = decision {
            writeln!(f, "hint: {hint}")?;
        }
        Ok(())
    }
}

/// `text` on one line, shortened to about `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        let cut: String = flat.chars().take(max).collect();
        format!("{cut}...")
    }
}
