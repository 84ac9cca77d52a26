//! `[workload.token]`: a workload whose sessions must (or may) present a JWT, where the agent
//! looks for it, how it is verified, and how the token's groups map to database roles. Raw
//! schema, validation and model of that section (pure).

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use toml::Spanned;

use super::error::{PolicyError, SourceText};
use super::model::SourceLocation;
use crate::oidc::{self, JwksSource, OidcConfig};

/// Largest leeway accepted for `exp`/`nbf`.
const MAX_LEEWAY: Duration = Duration::from_secs(5 * 60);
/// Longest group name (groups may be paths or distinguished names).
const MAX_GROUP_LEN: usize = 256;
/// Maximum length in bytes of a PostgreSQL identifier.
const MAX_IDENTIFIER_LEN: usize = 63;

/// A `[workload.token]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawToken {
    pub(crate) required: Option<Spanned<bool>>,
    pub(crate) issuer: Spanned<String>,
    pub(crate) audience: Spanned<OneOrMany>,
    pub(crate) jwks_file: Option<Spanned<String>>,
    pub(crate) jwks_url: Option<Spanned<String>>,
    pub(crate) groups_claim: Option<Spanned<String>>,
    /// A humantime duration, parsed in validation.
    pub(crate) leeway: Option<Spanned<String>>,
    /// Source names, checked in validation (so that an unknown one gets the list).
    pub(crate) sources: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) cgroup_token_path: Option<Spanned<String>>,
    /// `[workload.token.roles]`: group -> role or roles.
    pub(crate) roles: Option<Spanned<BTreeMap<String, Spanned<OneOrMany>>>>,
}

/// A string or an array of strings.
#[derive(Debug)]
pub(crate) struct OneOrMany(pub(crate) Vec<String>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OneOrManyVisitor;

        impl<'de> Visitor<'de> for OneOrManyVisitor {
            type Value = OneOrMany;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany(vec![v.to_owned()]))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<String>()? {
                    items.push(item);
                }
                Ok(OneOrMany(items))
            }
        }

        deserializer.deserialize_any(OneOrManyVisitor)
    }
}

/// Where a session's token may come from, in the order the agent looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TokenSource {
    /// The file given to `agent exec --token-file` (for jobs it starts).
    Exec,
    /// The file at `cgroup_token_path` for the connecting process's cgroup.
    Cgroup,
    /// The PostgreSQL password the client sends (the agent asks for it).
    Password,
}

impl TokenSource {
    pub const ALL: [TokenSource; 3] = [
        TokenSource::Exec,
        TokenSource::Cgroup,
        TokenSource::Password,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TokenSource::Exec => "exec",
            TokenSource::Cgroup => "cgroup",
            TokenSource::Password => "password",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The path of a cgroup's token file: an absolute path that may contain `{cgroup}` (the
/// connecting process's cgroup path, starting with `/`) and `{workload}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPathTemplate(String);

impl TokenPathTemplate {
    pub fn parse(written: &str) -> Result<Self, String> {
        let example = "e.g. \"/run/chunk-agent/tokens{cgroup}/token\"";
        if !written.starts_with('/') {
            return Err(format!(
                "cgroup_token_path `{written}` must be an absolute path ({example})"
            ));
        }
        let mut rest = written;
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else {
                return Err(format!("cgroup_token_path `{written}`: unclosed `{{`"));
            };
            let name = &after[..close];
            if name != "cgroup" && name != "workload" {
                return Err(format!(
                    "cgroup_token_path `{written}`: unknown placeholder `{{{name}}}` (known: \
                     {{cgroup}}, {{workload}})"
                ));
            }
            rest = &after[close + 1..];
        }
        if rest.contains('}') || written.split('/').any(|s| s == "." || s == "..") {
            return Err(format!(
                "cgroup_token_path `{written}`: stray `}}` or `.`/`..` segment ({example})"
            ));
        }
        if written.ends_with('/') {
            return Err(format!(
                "cgroup_token_path `{written}` must name a file, not a directory"
            ));
        }
        Ok(Self(written.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the path depends on the cgroup.
    pub fn uses_cgroup(&self) -> bool {
        self.0.contains("{cgroup}")
    }

    /// The path for a process in `cgroup` (a cgroup v2 path starting with `/`, no `.`/`..`
    /// segment: checked here) of `workload`. `None` for an unusable cgroup path.
    pub fn expand(&self, cgroup: &str, workload: &str) -> Option<PathBuf> {
        let valid_cgroup = cgroup.starts_with('/')
            && (cgroup == "/"
                || cgroup[1..]
                    .split('/')
                    .all(|s| !s.is_empty() && s != "." && s != ".."));
        if !valid_cgroup {
            return None;
        }
        let cgroup = if cgroup == "/" { "" } else { cgroup };
        Some(PathBuf::from(
            self.0
                .replace("{cgroup}", cgroup)
                .replace("{workload}", workload),
        ))
    }
}

impl fmt::Display for TokenPathTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A workload's token requirement (`[workload.token]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSettings {
    /// `true` (default): a session without a valid token is refused. `false`: a session without
    /// a token goes on as if there were no token section; a token that is present must be valid.
    pub required: bool,
    pub issuer: String,
    /// Never empty.
    pub audiences: Vec<String>,
    pub jwks: JwksSource,
    pub groups_claim: String,
    pub leeway: Duration,
    /// Where the agent looks, in this order (sorted, never empty).
    pub sources: Vec<TokenSource>,
    /// `Some` iff `sources` contains [`TokenSource::Cgroup`].
    pub cgroup_token_path: Option<TokenPathTemplate>,
    /// Token group -> PostgreSQL roles. Empty: groups are recorded but grant nothing.
    pub roles: BTreeMap<String, Vec<String>>,
    pub source: SourceLocation,
}

impl TokenSettings {
    /// The verification settings of this section.
    pub fn oidc_config(&self) -> OidcConfig {
        OidcConfig {
            issuer: self.issuer.clone(),
            audiences: self.audiences.clone(),
            jwks: self.jwks.clone(),
            groups_claim: self.groups_claim.clone(),
            leeway: self.leeway,
        }
    }

    /// Whether the token's groups decide the session's roles (`[workload.token.roles]`).
    pub fn maps_roles(&self) -> bool {
        !self.roles.is_empty()
    }

    /// The roles `groups` are mapped to: sorted, without repeats; groups not in the mapping
    /// grant nothing.
    pub fn roles_for(&self, groups: &[String]) -> Vec<String> {
        let mut roles: Vec<String> = groups
            .iter()
            .filter_map(|g| self.roles.get(g))
            .flatten()
            .cloned()
            .collect();
        roles.sort();
        roles.dedup();
        roles
    }
}

/// Validates a `[workload.token]` table; every error found, with its position.
pub(crate) fn validate(
    src: &SourceText<'_>,
    source: SourceLocation,
    raw: &Spanned<RawToken>,
) -> Result<TokenSettings, Vec<PolicyError>> {
    let t = raw.get_ref();
    let mut errors = Vec::new();
    let mut error = |at: std::ops::Range<usize>, message: String| {
        errors.push(src.error_at(at, message));
    };

    let issuer = t.issuer.get_ref();
    if issuer.trim().is_empty() {
        error(
            t.issuer.span(),
            "`issuer` must not be empty: write the exact `iss` of the tokens".into(),
        );
    }

    let mut audiences: Vec<String> = Vec::new();
    if t.audience.get_ref().0.is_empty() {
        error(
            t.audience.span(),
            "`audience` must name at least one audience".into(),
        );
    }
    for aud in &t.audience.get_ref().0 {
        if aud.trim().is_empty() {
            error(t.audience.span(), "an audience must not be empty".into());
        } else if audiences.contains(aud) {
            error(
                t.audience.span(),
                format!("audience `{aud}` is listed twice"),
            );
        } else {
            audiences.push(aud.clone());
        }
    }

    let jwks = match (&t.jwks_file, &t.jwks_url) {
        (Some(file), None) => {
            let path = PathBuf::from(file.get_ref());
            if path.is_absolute() {
                Some(JwksSource::File(path))
            } else {
                error(
                    file.span(),
                    format!("jwks_file path `{}` must be absolute", file.get_ref()),
                );
                None
            }
        }
        (None, Some(url)) => match url.get_ref().parse::<url::Url>() {
            Ok(parsed) => match oidc::fetch::check_url(&parsed) {
                Ok(()) => Some(JwksSource::Url(parsed)),
                Err(message) => {
                    error(url.span(), message);
                    None
                }
            },
            Err(e) => {
                error(
                    url.span(),
                    format!("invalid jwks_url `{}`: {e}", url.get_ref()),
                );
                None
            }
        },
        (Some(_), Some(url)) => {
            error(
                url.span(),
                "give one of `jwks_file` or `jwks_url`, not both".into(),
            );
            None
        }
        (None, None) => {
            error(
                raw.span(),
                "[workload.token] needs the issuer's public keys: `jwks_file = \"/abs/path\"` or \
                 `jwks_url = \"https://...\"`"
                    .into(),
            );
            None
        }
    };

    let groups_claim = match &t.groups_claim {
        None => oidc::DEFAULT_GROUPS_CLAIM.to_owned(),
        Some(claim) if claim.get_ref().trim().is_empty() => {
            error(claim.span(), "`groups_claim` must not be empty".into());
            String::new()
        }
        Some(claim) => claim.get_ref().clone(),
    };

    let leeway = match &t.leeway {
        None => oidc::DEFAULT_LEEWAY,
        Some(written) => match humantime::parse_duration(written.get_ref()) {
            Ok(d) if d <= MAX_LEEWAY => d,
            Ok(_) => {
                error(
                    written.span(),
                    format!("leeway `{}` is out of range: at most 5m", written.get_ref()),
                );
                oidc::DEFAULT_LEEWAY
            }
            Err(e) => {
                error(
                    written.span(),
                    format!(
                        "invalid leeway `{}`: {e}; expected a duration such as \"30s\"",
                        written.get_ref()
                    ),
                );
                oidc::DEFAULT_LEEWAY
            }
        },
    };

    let cgroup_token_path = match &t.cgroup_token_path {
        None => None,
        Some(written) => match TokenPathTemplate::parse(written.get_ref()) {
            Ok(p) => Some(p),
            Err(message) => {
                error(written.span(), message);
                None
            }
        },
    };

    let mut sources: Vec<TokenSource> = Vec::new();
    match &t.sources {
        None => {
            sources.extend([TokenSource::Exec, TokenSource::Password]);
            if t.cgroup_token_path.is_some() {
                sources.push(TokenSource::Cgroup);
            }
        }
        Some(written) => {
            if written.get_ref().is_empty() {
                error(
                    written.span(),
                    "`sources` must not be empty: list where tokens come from (exec, cgroup, password)".into(),
                );
            }
            for name in written.get_ref() {
                match TokenSource::from_name(name.get_ref()) {
                    None => error(
                        name.span(),
                        format!(
                            "unknown token source `{}` (sources: exec, cgroup, password)",
                            name.get_ref()
                        ),
                    ),
                    Some(s) if sources.contains(&s) => {
                        error(name.span(), format!("token source `{s}` is listed twice"));
                    }
                    Some(s) => sources.push(s),
                }
            }
            if sources.contains(&TokenSource::Cgroup) && t.cgroup_token_path.is_none() {
                error(
                    written.span(),
                    "token source `cgroup` needs `cgroup_token_path` (e.g. \
                     \"/run/chunk-agent/tokens{cgroup}/token\")"
                        .into(),
                );
            }
            if let (Some(path), false) =
                (&t.cgroup_token_path, sources.contains(&TokenSource::Cgroup))
            {
                error(
                    path.span(),
                    "`cgroup_token_path` is only used with the token source `cgroup`: add it to \
                     `sources`, or remove this path"
                        .into(),
                );
            }
        }
    }
    sources.sort();

    let mut roles = BTreeMap::new();
    if let Some(table) = &t.roles {
        if table.get_ref().is_empty() {
            error(
                table.span(),
                "[workload.token.roles] is empty: map token groups to roles, or remove the table"
                    .into(),
            );
        }
        for (group, mapped) in table.get_ref() {
            if group.is_empty()
                || group.len() > MAX_GROUP_LEN
                || group.chars().any(char::is_control)
            {
                error(
                    mapped.span(),
                    format!(
                        "invalid group name `{group}`: 1 to {MAX_GROUP_LEN} bytes, no control character"
                    ),
                );
                continue;
            }
            let names = &mapped.get_ref().0;
            if names.is_empty() {
                error(
                    mapped.span(),
                    format!("group `{group}` maps to no role: list at least one"),
                );
                continue;
            }
            let mut seen = HashSet::new();
            let mut list = Vec::new();
            for role in names {
                let problem = if role.is_empty() || role.trim().is_empty() {
                    Some("a role name must not be empty or blank".to_owned())
                } else if role.len() > MAX_IDENTIFIER_LEN {
                    Some(format!(
                        "role `{role}` is {} bytes long: PostgreSQL identifiers are at most \
                         {MAX_IDENTIFIER_LEN} bytes",
                        role.len()
                    ))
                } else if role.contains('\0') {
                    Some("a role name must not contain a NUL character".to_owned())
                } else if !seen.insert(role.as_str()) {
                    Some(format!("role `{role}` is listed twice for group `{group}`"))
                } else {
                    None
                };
                match problem {
                    Some(message) => error(mapped.span(), message),
                    None => list.push(role.clone()),
                }
            }
            roles.insert(group.clone(), list);
        }
    }

    let required = t.required.as_ref().is_none_or(|r| *r.get_ref());
    match jwks {
        Some(jwks) if errors.is_empty() => Ok(TokenSettings {
            required,
            issuer: issuer.clone(),
            audiences,
            jwks,
            groups_claim,
            leeway,
            sources,
            cgroup_token_path,
            roles,
            source,
        }),
        _ => Err(errors),
    }
}
