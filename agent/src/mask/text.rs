//! Content rules on text: any text value, and the free texts that can quote data: error and
//! notice fields (`Key (email)=(bob@example.com) already exists`, `Failing row contains
//! (...)`) and NOTIFY payloads. Only the parts the detectors and patterns find are replaced.
//!
//! Errors and notices about a table a column rule covers (their `s` schema and `t` table
//! fields name it) get their DETAIL replaced whole: it may quote the row's values, which the
//! column rule covers but no detector may recognise.

use std::ops::Range;

use crate::pg::codec::backend::{ErrorResponse, NotificationResponse, field};

use super::MaskRules;
use super::counts::{MaskCounts, Site};
use super::detectors;
use super::strategies::{self, Finding, REDACTED};

/// One thing a content rule found.
#[derive(Debug, Clone)]
struct Hit {
    range: Range<usize>,
    rule: usize,
    finding: Finding,
}

/// Masks what the content rules find in `text` (bytes: detectors match ASCII shapes, custom
/// patterns match UTF-8 text); `None` if they find nothing. Overlapping findings are merged
/// into one masked part, replaced with the strategy of the rule that found its start (the
/// first rule in file order, the longest finding, on a tie).
pub(crate) fn mask_content(
    rules: &MaskRules,
    text: &[u8],
    site: &Site,
    counts: &mut MaskCounts,
) -> Option<Vec<u8>> {
    let mut hits: Vec<Hit> = Vec::new();
    let mut ranges: Vec<Range<usize>> = Vec::new();
    let mut signals = None;
    for &rule in rules.content_rules() {
        for &detector in &rules.rules()[rule].detectors {
            if !signals
                .get_or_insert_with(|| detectors::Signals::of(text))
                .may_find(detector)
            {
                continue;
            }
            detectors::find(detector, text, &mut ranges);
            hits.extend(ranges.drain(..).map(|range| Hit {
                range,
                rule,
                finding: Finding::Detector(detector),
            }));
        }
        for pattern in rules.patterns(rule) {
            hits.extend(
                pattern
                    .find_iter(text)
                    .filter(|m| !m.is_empty())
                    .map(|m| Hit {
                        range: m.range(),
                        rule,
                        finding: Finding::Pattern,
                    }),
            );
        }
    }
    if hits.is_empty() {
        return None;
    }
    hits.sort_by(|a, b| {
        a.range
            .start
            .cmp(&b.range.start)
            .then(b.range.end.cmp(&a.range.end))
            .then(a.rule.cmp(&b.rule))
    });
    let mut merged: Vec<Hit> = Vec::with_capacity(hits.len());
    for hit in hits {
        match merged.last_mut() {
            Some(last) if hit.range.start < last.range.end => {
                last.range.end = last.range.end.max(hit.range.end);
            }
            _ => merged.push(hit),
        }
    }
    let mut out = Vec::with_capacity(text.len() + 16 * merged.len());
    let mut pos = 0;
    for hit in &merged {
        out.extend_from_slice(&text[pos..hit.range.start]);
        let strategy = rules.rules()[hit.rule].strategy;
        out.extend(strategies::mask_span(
            strategy,
            &text[hit.range.clone()],
            hit.finding,
            rules.key(),
        ));
        counts.add(hit.rule, site, Some(hit.finding));
        pos = hit.range.end;
    }
    out.extend_from_slice(&text[pos..]);
    Some(out)
}

/// Masks what the content rules find in a free text (counted at `site`); `None` if they find
/// nothing. Should a custom pattern cut a character in two, the whole text is redacted.
pub fn mask_text(
    rules: &MaskRules,
    text: &str,
    site: &Site,
    counts: &mut MaskCounts,
) -> Option<String> {
    let masked = mask_content(rules, text.as_bytes(), site, counts)?;
    Some(String::from_utf8(masked).unwrap_or_else(|_| REDACTED.to_string()))
}

/// Whether a field of an error or notice may quote data: all but severity, SQLSTATE,
/// positions and the server's source location.
fn is_scanned_field(code: u8) -> bool {
    !matches!(
        code,
        field::SEVERITY
            | field::SEVERITY_NONLOCALIZED
            | field::CODE
            | field::POSITION
            | field::INTERNAL_POSITION
            | field::FILE
            | field::LINE
            | field::ROUTINE
    )
}

/// The ErrorResponse (`notice`: NoticeResponse) with what the rules cover masked; `None` if
/// nothing is. Content rules scan every field that may quote data (message, detail, hint,
/// context, internal query, object names); a DETAIL about a table a column rule covers is
/// redacted whole.
pub fn mask_error_response(
    rules: &MaskRules,
    e: &ErrorResponse,
    notice: bool,
    counts: &mut MaskCounts,
) -> Option<ErrorResponse> {
    if rules.is_empty() {
        return None;
    }
    let table_rule = match (e.field(field::SCHEMA), e.field(field::TABLE)) {
        (Some(schema), Some(table)) if rules.has_column_rules() => rules.table_rule(schema, table),
        _ => None,
    };
    let mut out: Option<ErrorResponse> = None;
    for (index, (code, value)) in e.fields.iter().enumerate() {
        let site = if notice {
            Site::NoticeField(*code)
        } else {
            Site::ErrorField(*code)
        };
        let masked = match table_rule {
            Some(rule) if *code == field::DETAIL => {
                counts.add(rule, &site, None);
                Some(REDACTED.to_string())
            }
            _ if is_scanned_field(*code) => mask_text(rules, value, &site, counts),
            _ => None,
        };
        if let Some(masked) = masked {
            out.get_or_insert_with(|| e.clone()).fields[index].1 = masked;
        }
    }
    out
}

/// The notification with what the content rules find in its payload masked; `None` if they
/// find nothing. The channel name is not data.
pub fn mask_notification(
    rules: &MaskRules,
    n: &NotificationResponse,
    counts: &mut MaskCounts,
) -> Option<NotificationResponse> {
    let payload = mask_text(rules, &n.payload, &Site::Notification, counts)?;
    Some(NotificationResponse {
        payload,
        ..n.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::pg::codec::backend::Severity;
    use crate::policy::{Detector, MaskStrategy};

    fn pii(strategy: MaskStrategy) -> std::sync::Arc<MaskRules> {
        compiled(vec![content_rule("pii", &Detector::ALL, strategy)])
    }

    fn masked(rules: &MaskRules, text: &str) -> String {
        let mut counts = MaskCounts::new();
        mask_text(rules, text, &Site::Notification, &mut counts).unwrap_or_else(|| text.into())
    }

    #[test]
    fn only_the_matched_parts_are_replaced() {
        let rules = pii(MaskStrategy::Redact);
        assert_eq!(
            masked(&rules, "Key (email)=(bob@example.com) already exists."),
            "Key (email)=([REDACTED:email]) already exists."
        );
        assert_eq!(
            masked(&rules, "card 4111 1111 1111 1111, ssn 123-45-6789"),
            "card [REDACTED:card], ssn [REDACTED:ssn]"
        );
        assert_eq!(
            masked(&rules, "nothing here: 4111111111111112"),
            "nothing here: 4111111111111112"
        );
        let rules = pii(MaskStrategy::Partial { keep_last: 4 });
        assert_eq!(
            masked(&rules, "pan=4111111111111111;"),
            "pan=************1111;"
        );
    }

    #[test]
    fn overlapping_findings_are_masked_as_one_part() {
        // The custom pattern (`ref=bob@c`) overlaps the e-mail address (`bob@corp.io`): the
        // union is masked, once, by the finding that starts first.
        let rules = compiled(vec![
            content_rule("pii", &[Detector::Email], MaskStrategy::Redact),
            pattern_rule("refs", &["ref=[a-z]+@c"], MaskStrategy::Redact),
        ]);
        let mut counts = MaskCounts::new();
        let out = mask_text(
            &rules,
            "x ref=bob@corp.io y",
            &Site::Notification,
            &mut counts,
        )
        .unwrap();
        assert_eq!(out, "x [REDACTED:pattern] y");
        assert_eq!(counts.total(), 1);
    }

    #[test]
    fn custom_patterns_mask_what_they_match() {
        let rules = compiled(vec![pattern_rule(
            "employees",
            &["EMP-[0-9]{6}"],
            MaskStrategy::Hash,
        )]);
        let out = masked(&rules, "by EMP-123456 and EMP-123456, not EMP-12");
        let token = strategies::hash_token(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, KEY),
            b"EMP-123456",
        );
        assert_eq!(out, format!("by {token} and {token}, not EMP-12"));
    }

    #[test]
    fn non_ascii_text_around_findings_is_kept() {
        let rules = pii(MaskStrategy::Redact);
        assert_eq!(
            masked(&rules, "Zoë: zoë@x.fr, zoe@exämple.fr, zoe@example.fr ✓"),
            "Zoë: zoë@x.fr, zoe@exämple.fr, [REDACTED:email] ✓"
        );
    }

    #[test]
    fn error_detail_values_are_masked_and_counted() {
        let rules = pii(MaskStrategy::Partial { keep_last: 4 });
        let e = ErrorResponse::new(
            Severity::Error,
            "23505",
            "duplicate key value violates unique constraint \"users_email_key\"",
        )
        .detail("Key (email)=(alice@example.com) already exists.")
        .with_field(field::SCHEMA, "public")
        .with_field(field::TABLE, "users")
        .with_field(field::CONSTRAINT, "users_email_key");
        let mut counts = MaskCounts::new();
        let out = mask_error_response(&rules, &e, false, &mut counts).unwrap();
        assert_eq!(
            out.field(field::DETAIL),
            Some("Key (email)=(*************.com) already exists.")
        );
        assert_eq!(out.code(), Some("23505"));
        assert_eq!(out.message(), e.message());
        let entries = counts.entries(&rules);
        assert_eq!(entries.len(), 1);
        assert_eq!(
            (entries[0].site.as_str(), entries[0].found, entries[0].count),
            ("error field D", "email", 1)
        );
        // Nothing found: nothing changes.
        let clean = ErrorResponse::new(Severity::Error, "42P01", "relation \"x\" does not exist");
        assert!(mask_error_response(&rules, &clean, false, &mut counts).is_none());
    }

    #[test]
    fn notices_are_masked_like_errors() {
        let rules = pii(MaskStrategy::Redact);
        let n = ErrorResponse::new(Severity::Notice, "00000", "sent to bob@example.com");
        let mut counts = MaskCounts::new();
        let out = mask_error_response(&rules, &n, true, &mut counts).unwrap();
        assert_eq!(out.message(), Some("sent to [REDACTED:email]"));
        assert_eq!(counts.entries(&rules)[0].site, "notice field M");
    }

    #[test]
    fn the_detail_of_an_error_on_a_table_a_column_rule_covers_is_redacted_whole() {
        // No detector knows this plain number, but the column rule covers the table.
        let rules = compiled(vec![rule(
            "tax-ids",
            &["public.people.tax_id"],
            MaskStrategy::Hash,
        )]);
        let e = ErrorResponse::new(Severity::Error, "23505", "duplicate key value")
            .detail("Key (tax_id)=(987654321) already exists.")
            .with_field(field::SCHEMA, "public")
            .with_field(field::TABLE, "people");
        let mut counts = MaskCounts::new();
        let out = mask_error_response(&rules, &e, false, &mut counts).unwrap();
        assert_eq!(out.field(field::DETAIL), Some("[REDACTED]"));
        assert_eq!(counts.entries(&rules)[0].found, "value");
        // Another table: untouched.
        let other = e.clone().with_field(field::TABLE, "orders");
        assert!(mask_error_response(&rules, &other, false, &mut counts).is_none());
    }

    #[test]
    fn severity_code_and_positions_are_never_touched() {
        // A pattern that would match digits everywhere.
        let rules = compiled(vec![pattern_rule(
            "digits",
            &["[0-9]+"],
            MaskStrategy::Redact,
        )]);
        let e = ErrorResponse::new(Severity::Error, "22003", "value 123 out of range")
            .with_field(field::POSITION, "15")
            .with_field(field::LINE, "42");
        let out = mask_error_response(&rules, &e, false, &mut MaskCounts::new()).unwrap();
        assert_eq!(out.code(), Some("22003"));
        assert_eq!(out.field(field::POSITION), Some("15"));
        assert_eq!(out.field(field::LINE), Some("42"));
        assert_eq!(out.message(), Some("value [REDACTED:pattern] out of range"));
    }

    #[test]
    fn notify_payloads_are_masked() {
        let rules = pii(MaskStrategy::Hash);
        let n = NotificationResponse {
            process_id: 42,
            channel: "bob@example.com".into(),
            payload: "{\"user\":\"bob@example.com\",\"id\":7}".into(),
        };
        let mut counts = MaskCounts::new();
        let out = mask_notification(&rules, &n, &mut counts).unwrap();
        assert_eq!(out.channel, n.channel);
        assert_eq!(out.process_id, 42);
        assert!(out.payload.starts_with("{\"user\":\"h:"), "{}", out.payload);
        assert!(!out.payload.contains("bob"));
        // Still valid JSON.
        serde_json::from_str::<serde_json::Value>(&out.payload).unwrap();
        assert_eq!(counts.entries(&rules)[0].site, "notification payload");
        let plain = NotificationResponse {
            payload: "job 42 done".into(),
            ..n
        };
        assert!(mask_notification(&rules, &plain, &mut counts).is_none());
    }
}
