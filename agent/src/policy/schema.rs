//! Raw serde types: exactly what a policy file may contain, before semantic
//! validation (see `validate.rs`).
//!
//! Every table denies unknown fields, so a typo is an error rather than a
//! silently ignored setting. Values that semantic checks may complain about
//! are wrapped in [`Spanned`], so that errors point at them.
//!
//! To extend the schema (SQL rules, masking, approvals, recording, ...): add
//! a field to the relevant `Raw*` struct, optional (`Option<_>`) or with
//! `#[serde(default)]` so that existing files stay valid, wrap what needs a
//! precise error position in `Spanned`, then convert/validate it in
//! `validate.rs` and expose it on the model type in `model.rs`. A new kind
//! of top-level table is a new `Vec<Spanned<RawX>>` field on [`RawFile`].

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use toml::Spanned;

use super::model::Protocol;

/// One policy file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFile {
    #[serde(default)]
    pub(crate) workload: Vec<Spanned<RawWorkload>>,
    #[serde(default)]
    pub(crate) target: Vec<Spanned<RawTarget>>,
}

/// A `[[workload]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWorkload {
    pub(crate) name: Spanned<String>,
    pub(crate) description: Option<String>,
    #[serde(default)]
    pub(crate) cgroups: Vec<Spanned<String>>,
    pub(crate) targets: Spanned<Vec<Spanned<String>>>,
    /// `[[workload.access]]`: SQL access rules, one table per postgres target.
    #[serde(default)]
    pub(crate) access: Vec<Spanned<RawAccess>>,
    /// `[workload.recording]`: what its session recordings keep (see `recording.rs`).
    pub(crate) recording: Option<Spanned<super::recording::RawRecording>>,
    /// `[workload.token]`: the workload token its sessions present (see `token.rs`).
    pub(crate) token: Option<Spanned<super::token::RawToken>>,
}

/// A `[[workload.access]]` table: what the workload may do on one postgres target.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAccess {
    pub(crate) target: Spanned<String>,
    pub(crate) search_path: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    pub(crate) allow: Vec<Spanned<RawAllowRule>>,
    #[serde(default)]
    pub(crate) deny: Vec<Spanned<RawDenyRule>>,
    #[serde(default)]
    pub(crate) approve: Vec<Spanned<RawApprovalRule>>,
    pub(crate) functions: Option<Spanned<RawFunctions>>,
    /// The key of the keyed hash of mask rules with strategy `hash`.
    pub(crate) masking_key: Option<Spanned<RawSecret>>,
    /// `"mask"` or `"refuse"`: a string, checked in validation (so that a typo gets the list).
    pub(crate) copy_out_masked: Option<Spanned<String>>,
    /// `mask = [...]` / `[[workload.access.mask]]`: masking rules.
    #[serde(default)]
    pub(crate) mask: Vec<Spanned<RawMaskRule>>,
}

/// A `mask` rule: by column (`columns`, `result_columns`) or by content (`detectors`,
/// `patterns`), and a strategy.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMaskRule {
    pub(crate) name: Option<Spanned<String>>,
    pub(crate) columns: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) result_columns: Option<Spanned<Vec<Spanned<String>>>>,
    /// Detector names, checked in validation (so that an unknown one gets the list).
    pub(crate) detectors: Option<Spanned<Vec<Spanned<String>>>>,
    /// Regular expressions, compiled in validation.
    pub(crate) patterns: Option<Spanned<Vec<Spanned<String>>>>,
    /// A strategy name, checked in validation.
    pub(crate) strategy: Spanned<String>,
    /// Strategy `partial` only.
    pub(crate) keep_last: Option<Spanned<i64>>,
}

/// An `allow` rule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAllowRule {
    pub(crate) name: Option<Spanned<String>>,
    /// Operation names, checked in validation (so that an unknown one gets the list).
    pub(crate) operations: Spanned<Vec<Spanned<String>>>,
    pub(crate) tables: Option<Spanned<Vec<Spanned<String>>>>,
}

/// A `deny` rule: an allow rule's fields plus a `reason`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDenyRule {
    pub(crate) name: Option<Spanned<String>>,
    pub(crate) operations: Spanned<Vec<Spanned<String>>>,
    pub(crate) tables: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) reason: Option<Spanned<String>>,
}

/// An `approve` rule: an allow rule's fields plus who approves and how long to wait.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApprovalRule {
    pub(crate) name: Option<Spanned<String>>,
    pub(crate) operations: Spanned<Vec<Spanned<String>>>,
    pub(crate) tables: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) approvers: Option<Spanned<i64>>,
    pub(crate) groups: Option<Spanned<Vec<Spanned<String>>>>,
    /// A humantime duration, parsed in validation.
    pub(crate) timeout: Option<Spanned<String>>,
}

/// `functions = { allow = [...], deny = [...] }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFunctions {
    #[serde(default)]
    pub(crate) allow: Vec<Spanned<String>>,
    #[serde(default)]
    pub(crate) deny: Vec<Spanned<String>>,
}

/// A `[[target]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTarget {
    pub(crate) name: Spanned<String>,
    pub(crate) protocol: Protocol,
    pub(crate) addresses: Spanned<Vec<Spanned<String>>>,
    /// PostgreSQL only (refused on other protocols).
    pub(crate) database: Option<Spanned<String>>,
    /// PostgreSQL only (refused on other protocols).
    pub(crate) allow_replication: Option<Spanned<bool>>,
    /// PostgreSQL only (refused on other protocols).
    pub(crate) tls: Option<Spanned<RawTls>>,
    /// Required for PostgreSQL; optional (and unused) otherwise.
    pub(crate) credentials: Option<RawCredentials>,
}

/// A `[target.tls]` table: how the agent connects to the target.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTls {
    /// `"verify-full"` or `"disable"`; a string (not an enum) so that
    /// `"prefer"`/`"require"` get a message saying why they are not offered.
    pub(crate) mode: Option<Spanned<String>>,
    pub(crate) ca_file: Option<Spanned<String>>,
    pub(crate) server_name: Option<Spanned<String>>,
}

/// A `[target.credentials]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCredentials {
    pub(crate) mode: Option<Spanned<RawCredentialMode>>,
    pub(crate) username: Spanned<String>,
    pub(crate) password: Spanned<RawSecret>,
    /// Ephemeral only.
    pub(crate) group_role: Option<Spanned<String>>,
    /// Ephemeral only: a humantime duration, parsed in validation.
    pub(crate) ttl: Option<Spanned<String>>,
}

/// `mode` of a `[target.credentials]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawCredentialMode {
    Static,
    Ephemeral,
}

/// A secret as written: either a reference table, or an inline string,
/// which is accepted by the parser only so that validation can refuse it with
/// a precise message. The inline value itself is dropped at once.
#[derive(Debug)]
pub(crate) enum RawSecret {
    Inline,
    Reference(RawSecretRef),
}

/// `{ file = "..." }` or `{ env = "..." }` (exactly one: checked in validation).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSecretRef {
    pub(crate) file: Option<Spanned<String>>,
    pub(crate) env: Option<Spanned<String>>,
}

impl<'de> Deserialize<'de> for RawSecret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SecretVisitor;

        impl<'de> Visitor<'de> for SecretVisitor {
            type Value = RawSecret;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    r#"a secret reference: { file = "/absolute/path" } or { env = "NAME" }"#,
                )
            }

            fn visit_str<E: de::Error>(self, _inline_secret: &str) -> Result<RawSecret, E> {
                Ok(RawSecret::Inline)
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawSecret, A::Error> {
                RawSecretRef::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawSecret::Reference)
            }
        }

        deserializer.deserialize_any(SecretVisitor)
    }
}
