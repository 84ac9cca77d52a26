//! Per-rule counters of masked values, for the audit event of a statement: which rules
//! fired, where, how many values. Never a value.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use super::MaskRules;
use super::strategies::Finding;

/// Where masked values were.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Site {
    /// A result column (rows, RETURNING rows, COPY data): `schema.table.column` when it comes
    /// from a table, else its name.
    Column(Arc<str>),
    /// A field of an ErrorResponse (its type byte, e.g. `b'D'` for DETAIL).
    ErrorField(u8),
    /// A field of a NoticeResponse.
    NoticeField(u8),
    /// The payload of a NOTIFY.
    Notification,
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Site::Column(name) => write!(f, "column {name}"),
            Site::ErrorField(code) => write!(f, "error field {}", char::from(*code)),
            Site::NoticeField(code) => write!(f, "notice field {}", char::from(*code)),
            Site::Notification => f.write_str("notification payload"),
        }
    }
}

/// How many values each rule masked, where, and (content rules) what it found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaskCounts {
    /// (rule index, site, finding: `None` for a whole value) -> count.
    counts: BTreeMap<(usize, Site, Option<Finding>), u64>,
}

/// One line of [`MaskCounts::entries`], ready for an audit event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MaskCount {
    /// The rule's name.
    pub rule: String,
    /// Where, e.g. `column public.payments.card_number`, `error field D`.
    pub site: String,
    /// `value` for whole values masked by a column rule; else what the content rule found:
    /// `card`, `email`, ..., `pattern`.
    pub found: &'static str,
    /// How many values (column rules) or matches (content rules) were masked.
    pub count: u64,
}

impl MaskCounts {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one masked value (`finding` `None`) or match of rule `rule` at `site`.
    pub fn add(&mut self, rule: usize, site: &Site, finding: Option<Finding>) {
        *self
            .counts
            .entry((rule, site.clone(), finding))
            .or_insert(0) += 1;
    }

    /// Whether nothing was masked.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// The number of values and matches masked, all rules together.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: &MaskCounts) {
        for (key, n) in &other.counts {
            *self.counts.entry(key.clone()).or_insert(0) += n;
        }
    }

    /// Forgets everything (e.g. at the start of the next statement).
    pub fn clear(&mut self) {
        self.counts.clear();
    }

    /// The counts with rule names (from the rules that produced them), ordered by rule, site
    /// and finding.
    pub fn entries(&self, rules: &MaskRules) -> Vec<MaskCount> {
        self.counts
            .iter()
            .map(|((rule, site, finding), &count)| MaskCount {
                rule: rules
                    .rules()
                    .get(*rule)
                    .map_or_else(|| format!("mask[{rule}]"), |r| r.name.clone()),
                site: site.to_string(),
                found: finding.map_or("value", Finding::as_str),
                count,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{content_rule, masking, rule};
    use super::*;
    use crate::policy::{Detector, MaskStrategy};

    #[test]
    fn counts_are_per_rule_site_and_finding() {
        let rules = MaskRules::new(
            &masking(vec![
                rule(
                    "cards",
                    &["public.payments.card_number"],
                    MaskStrategy::Null,
                ),
                content_rule("pii", &[Detector::Email], MaskStrategy::Redact),
            ]),
            None,
        )
        .unwrap();
        let card: Site = Site::Column("public.payments.card_number".into());
        let mut counts = MaskCounts::new();
        assert!(counts.is_empty());
        counts.add(0, &card, None);
        counts.add(0, &card, None);
        counts.add(
            1,
            &Site::ErrorField(b'D'),
            Some(Finding::Detector(Detector::Email)),
        );
        let mut more = MaskCounts::new();
        more.add(1, &Site::Notification, Some(Finding::Pattern));
        more.add(0, &card, None);
        counts.merge(&more);
        assert_eq!(counts.total(), 5);
        let entries = counts.entries(&rules);
        assert_eq!(
            entries,
            [
                MaskCount {
                    rule: "cards".into(),
                    site: "column public.payments.card_number".into(),
                    found: "value",
                    count: 3
                },
                MaskCount {
                    rule: "pii".into(),
                    site: "error field D".into(),
                    found: "email",
                    count: 1
                },
                MaskCount {
                    rule: "pii".into(),
                    site: "notification payload".into(),
                    found: "pattern",
                    count: 1
                },
            ]
        );
        let json = serde_json::to_string(&entries[0]).unwrap();
        assert_eq!(
            json,
            r#"{"rule":"cards","site":"column public.payments.card_number","found":"value","count":3}"#
        );
        counts.clear();
        assert!(counts.is_empty());
    }
}
