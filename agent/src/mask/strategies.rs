//! How a masked value, or a masked part of a text, is replaced.
//!
//! | strategy | whole value (column rule) | part of a text (content rule) |
//! |----------|---------------------------|-------------------------------|
//! | `redact` | `[REDACTED]` | `[REDACTED:<detector>]` (`pattern` for custom patterns) |
//! | `partial` | `*` for every character but the last `keep_last` (all `*` if the value is not longer) | the same, on the part |
//! | `hash` | `h:` and 24 hex digits of HMAC-SHA256(key, value) | the same, on the part (cards, phones and IBANs without their separators) |
//! | `null` | NULL | as `redact` |
//!
//! Replacements are plain ASCII without quotes, backslashes, commas or braces, so a masked
//! part stays valid inside JSON strings, arrays and records.

use ring::hmac;

use crate::policy::{Detector, MaskStrategy};

/// What `redact` writes for a whole value.
pub const REDACTED: &str = "[REDACTED]";
/// The start of every keyed-hash token.
pub const HASH_PREFIX: &str = "h:";
/// Hex digits of the HMAC in a token (96 bits).
pub const HASH_HEX_LEN: usize = 24;

/// A masked whole value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Masked {
    Null,
    Value(Vec<u8>),
}

/// Why a strategy could not mask a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrategyError {
    /// `partial` counts characters: the value must be UTF-8.
    NotUtf8,
    /// `hash` without a key (not reachable through [`super::MaskRules`], which refuses it).
    NoKey,
}

/// Masks a whole value (of a text-like type, or any type for `null`).
pub fn mask_value(
    strategy: MaskStrategy,
    value: &[u8],
    key: Option<&hmac::Key>,
) -> Result<Masked, StrategyError> {
    Ok(match strategy {
        MaskStrategy::Redact => Masked::Value(REDACTED.as_bytes().to_vec()),
        MaskStrategy::Null => Masked::Null,
        MaskStrategy::Partial { keep_last } => {
            let text = std::str::from_utf8(value).map_err(|_| StrategyError::NotUtf8)?;
            Masked::Value(partial(text, keep_last).into_bytes())
        }
        MaskStrategy::Hash => {
            let key = key.ok_or(StrategyError::NoKey)?;
            Masked::Value(hash_token(key, value).into_bytes())
        }
    })
}

/// What a content rule found: a detector, or one of its custom patterns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Finding {
    Detector(Detector),
    Pattern,
}

impl Finding {
    /// `card`, `email` ... or `pattern`.
    pub fn as_str(self) -> &'static str {
        match self {
            Finding::Detector(d) => d.as_str(),
            Finding::Pattern => "pattern",
        }
    }

    /// What `redact` writes for a part it found: `[REDACTED:<finding>]`.
    pub fn redacted(self) -> &'static str {
        match self {
            Finding::Detector(Detector::Card) => "[REDACTED:card]",
            Finding::Detector(Detector::Email) => "[REDACTED:email]",
            Finding::Detector(Detector::Ssn) => "[REDACTED:ssn]",
            Finding::Detector(Detector::Phone) => "[REDACTED:phone]",
            Finding::Detector(Detector::Iban) => "[REDACTED:iban]",
            Finding::Detector(Detector::Jwt) => "[REDACTED:jwt]",
            Finding::Detector(Detector::ApiKey) => "[REDACTED:api_key]",
            Finding::Pattern => "[REDACTED:pattern]",
        }
    }
}

/// The replacement of a part of a text that `finding` matched. Never fails: where the
/// strategy cannot apply (a part that is not UTF-8 under `partial`, no key), it redacts.
pub fn mask_span(
    strategy: MaskStrategy,
    span: &[u8],
    finding: Finding,
    key: Option<&hmac::Key>,
) -> Vec<u8> {
    let redacted = || finding.redacted().as_bytes().to_vec();
    match strategy {
        MaskStrategy::Redact | MaskStrategy::Null => redacted(),
        MaskStrategy::Partial { keep_last } => match std::str::from_utf8(span) {
            Ok(text) => partial(text, keep_last).into_bytes(),
            Err(_) => redacted(),
        },
        MaskStrategy::Hash => match key {
            Some(key) => {
                let normalized: Vec<u8>;
                let input = match finding {
                    Finding::Detector(Detector::Card | Detector::Phone | Detector::Iban) => {
                        normalized = span
                            .iter()
                            .copied()
                            .filter(u8::is_ascii_alphanumeric)
                            .collect();
                        &normalized[..]
                    }
                    _ => span,
                };
                hash_token(key, input).into_bytes()
            }
            None => redacted(),
        },
    }
}

/// Every character but the last `keep_last` replaced by `*`; all of them when the text has
/// `keep_last` characters or fewer (keeping them all would show the whole value).
pub fn partial(text: &str, keep_last: u8) -> String {
    let count = text.chars().count();
    let keep = usize::from(keep_last);
    if count <= keep {
        return "*".repeat(count);
    }
    let mut out = String::with_capacity(text.len());
    out.extend(std::iter::repeat_n('*', count - keep));
    let tail = text
        .char_indices()
        .nth(count - keep)
        .map_or("", |(i, _)| &text[i..]);
    out.push_str(tail);
    out
}

/// `h:` and the first 24 hex digits of HMAC-SHA256(key, value): the same value always gives
/// the same token (joins still work), and without the key the token says nothing of it.
pub fn hash_token(key: &hmac::Key, value: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let tag = hmac::sign(key, value);
    let mut out = String::with_capacity(HASH_PREFIX.len() + HASH_HEX_LEN);
    out.push_str(HASH_PREFIX);
    for &b in &tag.as_ref()[..HASH_HEX_LEN / 2] {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &[u8]) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, k)
    }

    #[test]
    fn redact_replaces_whole_values_and_names_the_detector_in_parts() {
        assert_eq!(
            mask_value(MaskStrategy::Redact, b"secret", None),
            Ok(Masked::Value(b"[REDACTED]".to_vec()))
        );
        assert_eq!(
            mask_span(
                MaskStrategy::Redact,
                b"a@b.co",
                Finding::Detector(Detector::Email),
                None
            ),
            b"[REDACTED:email]"
        );
        assert_eq!(
            mask_span(MaskStrategy::Redact, b"EMP-123456", Finding::Pattern, None),
            b"[REDACTED:pattern]"
        );
    }

    #[test]
    fn redaction_markers_name_what_was_found() {
        for d in Detector::ALL {
            let f = Finding::Detector(d);
            assert_eq!(f.redacted(), format!("[REDACTED:{}]", f.as_str()));
        }
        assert_eq!(Finding::Pattern.redacted(), "[REDACTED:pattern]");
    }

    #[test]
    fn null_makes_whole_values_null_and_redacts_parts() {
        assert_eq!(mask_value(MaskStrategy::Null, b"x", None), Ok(Masked::Null));
        assert_eq!(
            mask_span(
                MaskStrategy::Null,
                b"123-45-6789",
                Finding::Detector(Detector::Ssn),
                None
            ),
            b"[REDACTED:ssn]"
        );
    }

    #[test]
    fn partial_keeps_the_last_characters() {
        assert_eq!(partial("4111111111111111", 4), "************1111");
        assert_eq!(partial("4111 1111 1111 1111", 4), "***************1111");
        // Characters, not bytes.
        assert_eq!(partial("Zoë Ärzte", 3), "******zte");
        assert_eq!(partial("éèàü", 2), "**àü");
        // Not longer than keep_last: everything is masked.
        assert_eq!(partial("1234", 4), "****");
        assert_eq!(partial("12", 4), "**");
        assert_eq!(partial("", 4), "");
        assert_eq!(
            mask_value(MaskStrategy::Partial { keep_last: 2 }, b"abcd", None),
            Ok(Masked::Value(b"**cd".to_vec()))
        );
        assert_eq!(
            mask_value(MaskStrategy::Partial { keep_last: 2 }, b"ab\xffcd", None),
            Err(StrategyError::NotUtf8)
        );
    }

    #[test]
    fn hash_is_deterministic_keyed_and_of_fixed_length() {
        let k = key(b"0123456789abcdef");
        let a = hash_token(&k, b"bob@example.com");
        assert_eq!(a, hash_token(&k, b"bob@example.com"));
        assert_ne!(a, hash_token(&k, b"bob@example.org"));
        assert_ne!(a, hash_token(&key(b"another key 1234"), b"bob@example.com"));
        assert_eq!(a.len(), 2 + HASH_HEX_LEN);
        assert!(a.starts_with("h:"));
        assert!(a[2..].bytes().all(|b| b.is_ascii_hexdigit()));
        // RFC 4231 test case 2: HMAC-SHA256("Jefe", "what do ya want for nothing?").
        assert_eq!(
            hash_token(&key(b"Jefe"), b"what do ya want for nothing?"),
            "h:5bdcc146bf60754e6a042426"
        );
        assert_eq!(
            mask_value(MaskStrategy::Hash, b"x", None),
            Err(StrategyError::NoKey)
        );
    }

    #[test]
    fn hashed_cards_phones_and_ibans_ignore_their_separators() {
        let k = key(b"0123456789abcdef");
        let card = Finding::Detector(Detector::Card);
        assert_eq!(
            mask_span(MaskStrategy::Hash, b"4111 1111 1111 1111", card, Some(&k)),
            mask_span(MaskStrategy::Hash, b"4111-1111-1111-1111", card, Some(&k)),
        );
        // And a card column hashed whole gives the same token as the card found in a text.
        assert_eq!(
            mask_span(MaskStrategy::Hash, b"4111 1111 1111 1111", card, Some(&k)),
            hash_token(&k, b"4111111111111111").into_bytes()
        );
        let email = Finding::Detector(Detector::Email);
        assert_eq!(
            mask_span(MaskStrategy::Hash, b"A@b.co", email, Some(&k)),
            hash_token(&k, b"A@b.co").into_bytes()
        );
    }

    #[test]
    fn partial_parts_keep_their_last_characters() {
        let card = Finding::Detector(Detector::Card);
        assert_eq!(
            mask_span(
                MaskStrategy::Partial { keep_last: 4 },
                b"4111111111111111",
                card,
                None
            ),
            b"************1111"
        );
    }
}
