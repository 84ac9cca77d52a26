//! From raw policy files to a validated [`PolicySet`], collecting every
//! error (with its position) instead of stopping at the first one.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::Regex;
use toml::Spanned;

use super::access::{
    Access, AccessRule, ApprovalRule, FunctionPattern, FunctionRules, ObjectPattern, Operation,
};
use super::error::{PolicyError, PolicyErrors, SourceText};
use super::mask::{
    ColumnPattern, CopyOutMasked, Detector, MaskRule, MaskStrategy, Masking, NamePattern,
};
use super::model::{
    CredentialMode, Credentials, PolicySet, PostgresSettings, Protocol, SecretRef, SourceLocation,
    Target, TlsMode, TlsSettings, Workload, normalize_addr,
};
use super::pattern::CgroupPattern;
use super::schema::{
    RawAccess, RawApprovalRule, RawCredentialMode, RawCredentials, RawFile, RawFunctions,
    RawMaskRule, RawSecret, RawTarget, RawTls, RawWorkload,
};

/// Maximum length of a workload or target name.
const MAX_NAME_LEN: usize = 48;

/// Maximum length in bytes of a PostgreSQL identifier (`NAMEDATALEN - 1`):
/// longer ones are silently truncated by the server.
const MAX_IDENTIFIER_LEN: usize = 63;

/// Default lifetime of an ephemeral per-session role.
const DEFAULT_TTL: Duration = Duration::from_secs(15 * 60);
/// Bounds of an ephemeral role's lifetime (inclusive).
const MIN_TTL: Duration = Duration::from_secs(60);
const MAX_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// Default and bounds (inclusive) of how long a statement waits for approval.
const DEFAULT_APPROVAL_TIMEOUT: Duration = Duration::from_secs(10 * 60);
const MIN_APPROVAL_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_APPROVAL_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);
/// Default and maximum `keep_last` of a mask rule with strategy `partial`.
const DEFAULT_KEEP_LAST: u8 = 4;
const MAX_KEEP_LAST: u8 = 64;
/// Bounds (inclusive) of the number of approvers of an approval rule.
const MAX_APPROVERS: i64 = 10;
/// Maximum length of an approver group name.
const MAX_GROUP_LEN: usize = 64;

/// See [`super::parse_sources`].
pub(crate) fn parse_sources(sources: &[(PathBuf, String)]) -> Result<PolicySet, PolicyErrors> {
    let texts: Vec<SourceText<'_>> = sources
        .iter()
        .map(|(path, text)| SourceText::new(path, text))
        .collect();
    let mut v = Validator::new(&texts);
    let mut files: Vec<(usize, RawFile)> = Vec::new();
    for (index, (_, text)) in sources.iter().enumerate() {
        match toml::from_str::<RawFile>(text) {
            Ok(file) => files.push((index, file)),
            Err(e) => {
                let error = toml_error(&texts[index], &e);
                v.errors.push((index, error));
            }
        }
    }
    // A target defined in a file that failed to parse is unknown; do not
    // pile "unknown target" errors on top of the parse error.
    v.all_files_parsed = files.len() == sources.len();

    // Targets first (across all files), so that workloads can refer to
    // targets defined in any file.
    for (index, file) in &files {
        for target in &file.target {
            v.target(*index, target);
        }
    }
    for (index, file) in &files {
        for workload in &file.workload {
            v.workload(*index, workload);
        }
    }
    v.finish()
}

/// Converts a toml parse/deserialisation error to a positioned error.
fn toml_error(src: &SourceText<'_>, e: &toml::de::Error) -> PolicyError {
    let span = e.span().unwrap_or(0..0);
    let mut message = e.message().trim_end().to_string();
    if message.starts_with("invalid type: map, expected a sequence") {
        // `[workload]` instead of `[[workload]]`.
        let written = src.slice(span.clone()).trim();
        if let Some(key) = written
            .strip_prefix('[')
            .filter(|rest| !rest.starts_with('['))
            .and_then(|rest| rest.strip_suffix(']'))
        {
            let key = key.trim();
            message.push_str(&format!(
                ": write `[[{key}]]` (an array of tables), not `[{key}]`"
            ));
        }
    }
    src.error_at(span, message)
}

struct Validator<'a> {
    texts: &'a [SourceText<'a>],
    /// (index of the source file, error); sorted at the end.
    errors: Vec<(usize, PolicyError)>,
    all_files_parsed: bool,
    /// Every target name seen (even if the target is otherwise invalid).
    target_defs: HashMap<String, SourceLocation>,
    /// The protocol of every target name seen.
    target_protocols: HashMap<String, Protocol>,
    workload_defs: HashMap<String, SourceLocation>,
    /// Normalised address -> (owning target, where the address is written).
    address_owners: HashMap<SocketAddr, (String, SourceLocation)>,
    /// Pattern as written -> (owning workload, where the pattern is written).
    pattern_owners: HashMap<String, (String, SourceLocation)>,
    targets: Vec<Target>,
    workloads: Vec<Workload>,
}

impl<'a> Validator<'a> {
    fn new(texts: &'a [SourceText<'a>]) -> Self {
        Self {
            texts,
            errors: Vec::new(),
            all_files_parsed: true,
            target_defs: HashMap::new(),
            target_protocols: HashMap::new(),
            workload_defs: HashMap::new(),
            address_owners: HashMap::new(),
            pattern_owners: HashMap::new(),
            targets: Vec::new(),
            workloads: Vec::new(),
        }
    }

    fn error<T>(&mut self, file: usize, at: &Spanned<T>, message: impl Into<String>) {
        let error = self.texts[file].error_at(at.span(), message);
        self.errors.push((file, error));
    }

    fn location<T>(&self, file: usize, at: &Spanned<T>) -> SourceLocation {
        let src = &self.texts[file];
        SourceLocation {
            file: src.path.to_path_buf(),
            line: src.position(at.span().start).0,
        }
    }

    fn finish(mut self) -> Result<PolicySet, PolicyErrors> {
        if self.errors.is_empty() {
            return Ok(PolicySet {
                workloads: self.workloads,
                targets: self.targets,
            });
        }
        self.errors
            .sort_by_key(|(file, e)| (*file, e.line, e.column));
        Err(PolicyErrors(
            self.errors.into_iter().map(|(_, e)| e).collect(),
        ))
    }

    /// Checks the name syntax; true if valid.
    fn check_name(&mut self, file: usize, name: &Spanned<String>, kind: &str) -> bool {
        if is_valid_name(name.get_ref()) {
            return true;
        }
        self.error(
            file,
            name,
            format!(
                "invalid {kind} name `{}`: use 1 to {MAX_NAME_LEN} characters among `a-z`, \
                 `0-9`, `_` and `-`, starting with a letter or a digit",
                name.get_ref()
            ),
        );
        false
    }

    fn target(&mut self, file: usize, raw: &Spanned<RawTarget>) {
        let source = self.location(file, raw);
        let t = raw.get_ref();
        let name = t.name.get_ref().clone();

        self.check_name(file, &t.name, "target");
        // A duplicate is only checked on its own: its addresses are not
        // claimed, so as not to report them as conflicting with the original.
        let duplicate = if let Some(first) = self.target_defs.get(&name) {
            let message = format!("target `{name}` is already defined at {first}");
            self.error(file, &t.name, message);
            true
        } else {
            self.target_defs.insert(name.clone(), source.clone());
            self.target_protocols.insert(name.clone(), t.protocol);
            false
        };

        if t.addresses.get_ref().is_empty() {
            self.error(
                file,
                &t.addresses,
                format!(
                    "target `{name}` has no addresses: list at least one IP address and port, \
                     e.g. \"127.0.0.1:5432\""
                ),
            );
        }
        let mut addresses = Vec::new();
        for written in t.addresses.get_ref() {
            match parse_address(written.get_ref()) {
                Ok(addr) => {
                    if duplicate || self.claim_address(file, &name, written, addr) {
                        addresses.push(addr);
                    }
                }
                Err(message) => self.error(file, written, message),
            }
        }

        let credentials = t
            .credentials
            .as_ref()
            .and_then(|c| self.credentials(file, c));
        let postgres = match t.protocol {
            Protocol::Postgres => {
                if t.credentials.is_none() {
                    self.error(
                        file,
                        raw,
                        format!(
                            "postgres target `{name}` needs a [target.credentials] table: the \
                             agent logs in upstream with it"
                        ),
                    );
                }
                Some(self.postgres_settings(file, t))
            }
            Protocol::Tcp => {
                self.refuse_postgres_only_fields(file, &name, t);
                None
            }
        };

        self.targets.push(Target {
            name,
            protocol: t.protocol,
            addresses,
            credentials,
            postgres,
            source,
        });
    }

    fn postgres_settings(&mut self, file: usize, t: &RawTarget) -> PostgresSettings {
        let database = t
            .database
            .as_ref()
            .filter(|db| self.check_identifier(file, db, "`database`"))
            .map(|db| db.get_ref().clone());
        let allow_replication = t.allow_replication.as_ref().is_some_and(|a| *a.get_ref());
        let tls = t
            .tls
            .as_ref()
            .map(|tls| self.tls(file, tls.get_ref()))
            .unwrap_or_default();
        PostgresSettings {
            database,
            allow_replication,
            tls,
        }
    }

    /// Errors for the fields that only make sense on a postgres target.
    fn refuse_postgres_only_fields(&mut self, file: usize, name: &str, t: &RawTarget) {
        let why = |field: &str| {
            format!(
                "{field} only applies to postgres targets: target `{name}` has protocol = \"tcp\" \
                 (its bytes are relayed as they are)"
            )
        };
        if let Some(database) = &t.database {
            self.error(file, database, why("`database`"));
        }
        if let Some(allow) = &t.allow_replication {
            self.error(file, allow, why("`allow_replication`"));
        }
        if let Some(tls) = &t.tls {
            self.error(file, tls, why("[target.tls]"));
        }
    }

    fn tls(&mut self, file: usize, raw: &RawTls) -> TlsSettings {
        let mode = match &raw.mode {
            None => TlsMode::default(),
            Some(mode) => match mode.get_ref().as_str() {
                "verify-full" => TlsMode::VerifyFull,
                "disable" => TlsMode::Disable,
                other => {
                    let mut message = format!(
                        "unsupported tls mode `{other}`: use \"verify-full\" (TLS, with the \
                         server certificate and name verified) or \"disable\" (no TLS)"
                    );
                    if matches!(other, "allow" | "prefer" | "require" | "verify-ca") {
                        message.push_str(
                            "; TLS without full verification is not offered: it does not stop \
                             an active attacker",
                        );
                    }
                    self.error(file, mode, message);
                    // Go on as with the default, to check the other fields.
                    TlsMode::default()
                }
            },
        };
        let only_verify_full = |field: &str| {
            format!(
                "`{field}` is only allowed with mode = \"verify-full\" (this target has mode = \
                 \"disable\": no TLS)"
            )
        };

        let mut ca_file = None;
        if let Some(path) = &raw.ca_file {
            if mode == TlsMode::Disable {
                self.error(file, path, only_verify_full("ca_file"));
            } else if Path::new(path.get_ref()).is_absolute() {
                ca_file = Some(PathBuf::from(path.get_ref()));
            } else {
                let message = format!("ca_file path `{}` must be absolute", path.get_ref());
                self.error(file, path, message);
            }
        }

        let mut server_name = None;
        if let Some(written) = &raw.server_name {
            let value = written.get_ref();
            if mode == TlsMode::Disable {
                self.error(file, written, only_verify_full("server_name"));
            } else if value.parse::<IpAddr>().is_ok() || is_valid_dns_name(value) {
                server_name = Some(value.clone());
            } else {
                let message = format!(
                    "invalid server_name `{value}`: expected a DNS name (e.g. \
                     \"orders.db.internal\", no wildcard) or an IP address"
                );
                self.error(file, written, message);
            }
        }

        TlsSettings {
            mode,
            ca_file,
            server_name,
        }
    }

    /// Checks a PostgreSQL identifier as written (it is quoted when used, so
    /// any character but NUL is fine); true if valid.
    fn check_identifier(&mut self, file: usize, value: &Spanned<String>, what: &str) -> bool {
        let v = value.get_ref();
        let problem = if v.is_empty() {
            format!("{what} must not be empty")
        } else if v.len() > MAX_IDENTIFIER_LEN {
            format!(
                "{what} is {} bytes long: PostgreSQL identifiers are at most \
                 {MAX_IDENTIFIER_LEN} bytes",
                v.len()
            )
        } else if v.contains('\0') {
            format!("{what} must not contain a NUL character")
        } else {
            return true;
        };
        self.error(file, value, problem);
        false
    }

    /// Records `addr` as belonging to `target`; false (and an error) if some
    /// target already has it.
    fn claim_address(
        &mut self,
        file: usize,
        target: &str,
        written: &Spanned<String>,
        addr: SocketAddr,
    ) -> bool {
        let key = normalize_addr(addr);
        if let Some((owner, at)) = self.address_owners.get(&key) {
            let message = if owner == target {
                format!(
                    "address `{}` is listed twice in target `{target}` (first at {at})",
                    written.get_ref()
                )
            } else {
                format!(
                    "address `{}` already belongs to target `{owner}` ({at}): an address may \
                     belong to only one target",
                    written.get_ref()
                )
            };
            self.error(file, written, message);
            return false;
        }
        let at = self.location(file, written);
        self.address_owners.insert(key, (target.to_string(), at));
        true
    }

    fn credentials(&mut self, file: usize, raw: &RawCredentials) -> Option<Credentials> {
        let mut ok = true;
        if raw.username.get_ref().trim().is_empty() {
            self.error(
                file,
                &raw.username,
                "credentials username must not be empty or blank",
            );
            ok = false;
        } else if !self.check_identifier(file, &raw.username, "credentials username") {
            ok = false;
        }
        let password = self.secret_ref(file, &raw.password, "password");
        let mode = self.credential_mode(file, raw);
        match (password, mode) {
            (Some(password), Some(mode)) if ok => Some(Credentials {
                username: raw.username.get_ref().clone(),
                password,
                mode,
            }),
            _ => None,
        }
    }

    /// A secret reference written in field `field` (`{ file = "..." }` or `{ env = "..." }`).
    fn secret_ref(
        &mut self,
        file: usize,
        raw: &Spanned<RawSecret>,
        field: &str,
    ) -> Option<SecretRef> {
        match raw.get_ref() {
            RawSecret::Inline => {
                let message = format!(
                    r#"inline secrets are not allowed: use {field} = {{ file = "..." }} or {{ env = "..." }}"#
                );
                self.error(file, raw, message);
                None
            }
            RawSecret::Reference(r) => match (&r.file, &r.env) {
                (Some(path), None) => {
                    if Path::new(path.get_ref()).is_absolute() {
                        Some(SecretRef::File(PathBuf::from(path.get_ref())))
                    } else {
                        let message =
                            format!("secret file path `{}` must be absolute", path.get_ref());
                        self.error(file, path, message);
                        None
                    }
                }
                (None, Some(env)) => {
                    if is_valid_env_name(env.get_ref()) {
                        Some(SecretRef::Env(env.get_ref().clone()))
                    } else {
                        let message = format!(
                            "invalid environment variable name `{}`: expected \
                             [A-Za-z_][A-Za-z0-9_]*",
                            env.get_ref()
                        );
                        self.error(file, env, message);
                        None
                    }
                }
                (Some(_), Some(_)) => {
                    self.error(
                        file,
                        raw,
                        "a secret reference takes exactly one of `file` or `env`, not both",
                    );
                    None
                }
                (None, None) => {
                    self.error(
                        file,
                        raw,
                        r#"a secret reference needs exactly one of `file` or `env`: { file = "..." } or { env = "..." }"#,
                    );
                    None
                }
            },
        }
    }

    fn credential_mode(&mut self, file: usize, raw: &RawCredentials) -> Option<CredentialMode> {
        let mode = raw
            .mode
            .as_ref()
            .map_or(RawCredentialMode::Static, |m| *m.get_ref());
        match mode {
            RawCredentialMode::Static => {
                let mut ok = true;
                for (field, value) in [("group_role", &raw.group_role), ("ttl", &raw.ttl)] {
                    if let Some(value) = value {
                        let message = format!(
                            "`{field}` is only used with mode = \"ephemeral\" (these credentials \
                             are static: the agent logs in as `username` itself)"
                        );
                        self.error(file, value, message);
                        ok = false;
                    }
                }
                ok.then_some(CredentialMode::Static)
            }
            RawCredentialMode::Ephemeral => {
                let group_role = match (&raw.group_role, &raw.mode) {
                    (Some(role), _) => self
                        .check_identifier(file, role, "`group_role`")
                        .then(|| role.get_ref().clone()),
                    (None, Some(mode)) => {
                        self.error(
                            file,
                            mode,
                            "ephemeral credentials need `group_role`: the least-privilege group \
                             role granted to each per-session role",
                        );
                        None
                    }
                    // Not reached: ephemeral is never the default mode.
                    (None, None) => None,
                };
                let ttl = match &raw.ttl {
                    None => Some(DEFAULT_TTL),
                    Some(ttl) => self.ttl(file, ttl),
                };
                Some(CredentialMode::Ephemeral {
                    group_role: group_role?,
                    ttl: ttl?,
                })
            }
        }
    }

    fn ttl(&mut self, file: usize, written: &Spanned<String>) -> Option<Duration> {
        let value = written.get_ref();
        let message = match humantime::parse_duration(value) {
            Ok(ttl) if (MIN_TTL..=MAX_TTL).contains(&ttl) => return Some(ttl),
            Ok(_) => format!("ttl `{value}` is out of range: it must be between 1m and 24h"),
            Err(e) => format!(
                "invalid ttl `{value}`: {e}; expected a duration such as \"15m\" or \"1h30m\""
            ),
        };
        self.error(file, written, message);
        None
    }

    fn workload(&mut self, file: usize, raw: &Spanned<RawWorkload>) {
        let source = self.location(file, raw);
        let w = raw.get_ref();
        let name = w.name.get_ref().clone();

        self.check_name(file, &w.name, "workload");
        // As for targets, a duplicate's patterns are not claimed.
        let duplicate = if let Some(first) = self.workload_defs.get(&name) {
            let message = format!("workload `{name}` is already defined at {first}");
            self.error(file, &w.name, message);
            true
        } else {
            self.workload_defs.insert(name.clone(), source.clone());
            false
        };

        let mut cgroups = Vec::new();
        for written in &w.cgroups {
            match CgroupPattern::parse(written.get_ref()) {
                Ok(pattern) => {
                    if duplicate || self.claim_pattern(file, &name, written) {
                        cgroups.push(pattern);
                    }
                }
                Err(message) => self.error(file, written, message),
            }
        }

        if w.targets.get_ref().is_empty() {
            self.error(
                file,
                &w.targets,
                format!(
                    "workload `{name}` has no targets: list the names of the targets it may reach"
                ),
            );
        }
        let mut targets: Vec<String> = Vec::new();
        let mut seen = HashSet::new();
        for reference in w.targets.get_ref() {
            let target = reference.get_ref();
            if !seen.insert(target.as_str()) {
                let message = format!("target `{target}` is listed twice");
                self.error(file, reference, message);
                continue;
            }
            if !self.target_defs.contains_key(target) {
                if self.all_files_parsed {
                    let message = self.unknown_target_message(target);
                    self.error(file, reference, message);
                }
                continue;
            }
            targets.push(target.clone());
        }

        let mut access: Vec<Access> = Vec::new();
        let mut access_defs: HashMap<String, SourceLocation> = HashMap::new();
        for raw_access in &w.access {
            if let Some(a) = self.access(file, &name, w, raw_access, &mut access_defs) {
                access.push(a);
            }
        }

        let token = w.token.as_ref().and_then(|raw| {
            let at = self.location(file, raw);
            super::token::validate(&self.texts[file], at, raw)
                .map_err(|errors| self.errors.extend(errors.into_iter().map(|e| (file, e))))
                .ok()
        });

        let recording = match &w.recording {
            None => Default::default(),
            Some(raw) => {
                super::recording::validate(&self.texts[file], raw).unwrap_or_else(|errors| {
                    self.errors.extend(errors.into_iter().map(|e| (file, e)));
                    Default::default()
                })
            }
        };

        self.workloads.push(Workload {
            name,
            description: w.description.clone(),
            cgroups,
            targets,
            access,
            recording,
            token,
            source,
        });
    }

    /// A `[[workload.access]]` table of workload `workload`; `defs` holds the targets of the
    /// workload's access tables seen so far.
    fn access(
        &mut self,
        file: usize,
        workload: &str,
        w: &RawWorkload,
        raw: &Spanned<RawAccess>,
        defs: &mut HashMap<String, SourceLocation>,
    ) -> Option<Access> {
        let source = self.location(file, raw);
        let a = raw.get_ref();
        let target = a.target.get_ref().clone();
        let mut ok = true;

        if let Some(first) = defs.get(&target) {
            let message = format!(
                "workload `{workload}` already has a [[workload.access]] table for target \
                 `{target}` (at {first}): merge the two"
            );
            self.error(file, &a.target, message);
            ok = false;
        } else {
            defs.insert(target.clone(), source.clone());
        }
        let listed = w.targets.get_ref().iter().any(|t| t.get_ref() == &target);
        match self.target_protocols.get(&target) {
            // An unknown target in `targets` is reported there.
            None if listed => ok = false,
            None => {
                if self.all_files_parsed {
                    let message = format!(
                        "{}; a [[workload.access]] table is for one of the workload's targets",
                        self.unknown_target_message(&target)
                    );
                    self.error(file, &a.target, message);
                }
                ok = false;
            }
            Some(_) if !listed => {
                let message = format!(
                    "workload `{workload}` has access rules for target `{target}` but does not \
                     list it in `targets`: add it there, or remove this table"
                );
                self.error(file, &a.target, message);
                ok = false;
            }
            Some(Protocol::Tcp) => {
                let message = format!(
                    "access rules only apply to postgres targets: target `{target}` has \
                     protocol = \"tcp\" (its bytes are relayed as they are)"
                );
                self.error(file, &a.target, message);
                ok = false;
            }
            Some(Protocol::Postgres) => {}
        }

        let search_path = match &a.search_path {
            None => vec!["public".to_string()],
            Some(path) => self.search_path(file, path).unwrap_or_else(|| {
                ok = false;
                Vec::new()
            }),
        };

        let mut names: HashMap<String, SourceLocation> = HashMap::new();
        let mut allow = Vec::new();
        for (i, rule) in a.allow.iter().enumerate() {
            let r = rule.get_ref();
            let parts = RuleParts {
                kind: "allow",
                index: i,
                name: r.name.as_ref(),
                operations: &r.operations,
                tables: r.tables.as_ref(),
            };
            match self.rule(file, rule, parts, &mut names) {
                Some(rule) => allow.push(rule),
                None => ok = false,
            }
        }
        let mut deny = Vec::new();
        for (i, rule) in a.deny.iter().enumerate() {
            let r = rule.get_ref();
            let parts = RuleParts {
                kind: "deny",
                index: i,
                name: r.name.as_ref(),
                operations: &r.operations,
                tables: r.tables.as_ref(),
            };
            let reason = match &r.reason {
                Some(reason) if reason.get_ref().trim().is_empty() => {
                    self.error(
                        file,
                        reason,
                        "`reason` must not be empty: say why, or remove it",
                    );
                    ok = false;
                    None
                }
                Some(reason) => Some(reason.get_ref().clone()),
                None => None,
            };
            match self.rule(file, rule, parts, &mut names) {
                Some(rule) => deny.push(AccessRule { reason, ..rule }),
                None => ok = false,
            }
        }
        let mut approve = Vec::new();
        for (i, rule) in a.approve.iter().enumerate() {
            match self.approval_rule(file, i, rule, &mut names) {
                Some(rule) => approve.push(rule),
                None => ok = false,
            }
        }
        let functions = match &a.functions {
            None => FunctionRules::default(),
            Some(functions) => self
                .function_rules(file, functions.get_ref())
                .unwrap_or_else(|| {
                    ok = false;
                    FunctionRules::default()
                }),
        };

        let masking = self.masking(file, a, &mut names).unwrap_or_else(|| {
            ok = false;
            Masking::default()
        });

        ok.then_some(Access {
            target,
            search_path,
            allow,
            deny,
            approve,
            functions,
            masking,
            source,
        })
    }

    /// The masking settings of an access table (`masking_key`, `copy_out_masked`, `mask`);
    /// `None` after reporting errors. `names` holds the rule names of the table so far.
    fn masking(
        &mut self,
        file: usize,
        a: &RawAccess,
        names: &mut HashMap<String, SourceLocation>,
    ) -> Option<Masking> {
        let mut ok = true;
        let key = match &a.masking_key {
            None => None,
            Some(raw) => {
                let key = self.secret_ref(file, raw, "masking_key");
                ok &= key.is_some();
                key
            }
        };
        let copy_out = match &a.copy_out_masked {
            None => CopyOutMasked::default(),
            Some(written) => match written.get_ref().as_str() {
                "mask" => CopyOutMasked::Mask,
                "refuse" => CopyOutMasked::Refuse,
                other => {
                    let message = format!(
                        "unknown copy_out_masked `{other}`: use \"mask\" (mask the COPY data row \
                         by row) or \"refuse\" (deny COPY ... TO STDOUT when a mask rule applies \
                         to what it copies)"
                    );
                    self.error(file, written, message);
                    ok = false;
                    CopyOutMasked::default()
                }
            },
        };
        let mut rules = Vec::new();
        for (index, raw) in a.mask.iter().enumerate() {
            match self.mask_rule(file, index, raw, a.masking_key.is_some(), names) {
                Some(rule) => rules.push(rule),
                None => ok = false,
            }
        }
        ok.then_some(Masking {
            rules,
            key,
            copy_out,
        })
    }

    /// One `mask` rule (index `index` in its list); `has_key`: whether the access table has a
    /// `masking_key` (valid or not: an invalid one is reported there).
    fn mask_rule(
        &mut self,
        file: usize,
        index: usize,
        raw: &Spanned<RawMaskRule>,
        has_key: bool,
        names: &mut HashMap<String, SourceLocation>,
    ) -> Option<MaskRule> {
        let source = self.location(file, raw);
        let r = raw.get_ref();
        let mut ok = true;
        let name = match &r.name {
            Some(written) => {
                ok &= self.claim_rule_name(file, written, names);
                written.get_ref().clone()
            }
            None => format!("mask[{index}]"),
        };

        let columns = self.mask_list(
            file,
            r.columns.as_ref(),
            "columns",
            &mut ok,
            ColumnPattern::parse,
        );
        let result_columns = self.mask_list(
            file,
            r.result_columns.as_ref(),
            "result_columns",
            &mut ok,
            NamePattern::parse,
        );
        let detectors = self.mask_list(file, r.detectors.as_ref(), "detectors", &mut ok, |d| {
            Detector::from_name(d).ok_or_else(|| {
                let known = Detector::ALL.map(Detector::as_str).join(", ");
                format!("unknown detector `{d}` (detectors: {known})")
            })
        });
        let patterns = self.mask_list(file, r.patterns.as_ref(), "patterns", &mut ok, mask_pattern);

        let by_column = r.columns.is_some() || r.result_columns.is_some();
        let by_content = r.detectors.is_some() || r.patterns.is_some();
        if by_column && by_content {
            let message = format!(
                "mask rule `{name}` mixes column selectors (`columns`, `result_columns`) and \
                 content selectors (`detectors`, `patterns`): split it into two rules"
            );
            self.error(file, raw, message);
            ok = false;
        } else if !by_column && !by_content {
            let message = format!(
                "mask rule `{name}` selects nothing: give `columns` or `result_columns` (whole \
                 values of those columns are masked), or `detectors` or `patterns` (what they \
                 find in text values is masked)"
            );
            self.error(file, raw, message);
            ok = false;
        }

        let strategy = match r.strategy.get_ref().as_str() {
            "redact" => Some(MaskStrategy::Redact),
            "null" => Some(MaskStrategy::Null),
            "hash" => {
                if !has_key {
                    self.error(
                        file,
                        &r.strategy,
                        "strategy \"hash\" needs a key: add `masking_key = { file = \"...\" }` \
                         (or `{ env = \"...\" }`) to this [[workload.access]] table",
                    );
                    ok = false;
                }
                Some(MaskStrategy::Hash)
            }
            "partial" => match &r.keep_last {
                None => Some(MaskStrategy::Partial {
                    keep_last: DEFAULT_KEEP_LAST,
                }),
                Some(n) => match u8::try_from(*n.get_ref()) {
                    Ok(keep_last) if (1..=MAX_KEEP_LAST).contains(&keep_last) => {
                        Some(MaskStrategy::Partial { keep_last })
                    }
                    _ => {
                        let message = format!(
                            "keep_last = {} is out of range: it must be between 1 and \
                             {MAX_KEEP_LAST}",
                            n.get_ref()
                        );
                        self.error(file, n, message);
                        None
                    }
                },
            },
            other => {
                let known = MaskStrategy::NAMES.join(", ");
                let message = format!("unknown strategy `{other}` (strategies: {known})");
                self.error(file, &r.strategy, message);
                None
            }
        };
        if let (Some(keep_last), false) = (&r.keep_last, r.strategy.get_ref() == "partial") {
            self.error(
                file,
                keep_last,
                "`keep_last` only applies to strategy = \"partial\"",
            );
            ok = false;
        }

        match strategy {
            Some(strategy) if ok => Some(MaskRule {
                name,
                columns,
                result_columns,
                detectors,
                patterns,
                strategy,
                source,
            }),
            _ => None,
        }
    }

    /// A list of a mask rule (`columns`, `result_columns`, `detectors`, `patterns`): not
    /// empty, no repeats, each item parsed by `parse`. Empty if absent.
    fn mask_list<T>(
        &mut self,
        file: usize,
        written: Option<&Spanned<Vec<Spanned<String>>>>,
        field: &str,
        ok: &mut bool,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Vec<T> {
        let Some(written) = written else {
            return Vec::new();
        };
        if written.get_ref().is_empty() {
            let message =
                format!("`{field} = []` selects nothing: list what to mask, or remove `{field}`");
            self.error(file, written, message);
            *ok = false;
        }
        let mut seen = HashSet::new();
        let mut items = Vec::new();
        for item in written.get_ref() {
            let value = item.get_ref();
            if !seen.insert(value.as_str()) {
                let message = format!("`{value}` is listed twice in `{field}`");
                self.error(file, item, message);
                *ok = false;
                continue;
            }
            match parse(value) {
                Ok(parsed) => items.push(parsed),
                Err(message) => {
                    self.error(file, item, message);
                    *ok = false;
                }
            }
        }
        items
    }

    /// Checks a rule name and records it in `names` (the names of its access table); false
    /// (and an error) if it is invalid or already used.
    fn claim_rule_name(
        &mut self,
        file: usize,
        written: &Spanned<String>,
        names: &mut HashMap<String, SourceLocation>,
    ) -> bool {
        let name = written.get_ref();
        if !self.check_name(file, written, "rule") {
            return false;
        }
        if let Some(first) = names.get(name) {
            let message =
                format!("rule name `{name}` is already used in this access table (at {first})");
            self.error(file, written, message);
            return false;
        }
        names.insert(name.clone(), self.location(file, written));
        true
    }

    fn search_path(
        &mut self,
        file: usize,
        written: &Spanned<Vec<Spanned<String>>>,
    ) -> Option<Vec<String>> {
        if written.get_ref().is_empty() {
            self.error(
                file,
                written,
                "`search_path` must not be empty: list the schemas unqualified names resolve to \
                 (default [\"public\"])",
            );
            return None;
        }
        let mut ok = true;
        let mut path: Vec<String> = Vec::new();
        for schema in written.get_ref() {
            let value = schema.get_ref();
            if value.starts_with('$') {
                let message = format!(
                    "search_path entry `{value}`: write the schema name itself (the agent does \
                     not expand `$user`)"
                );
                self.error(file, schema, message);
                ok = false;
            } else if !self.check_identifier(file, schema, "a search_path schema") {
                ok = false;
            } else if path.contains(value) {
                let message = format!("schema `{value}` is listed twice in search_path");
                self.error(file, schema, message);
                ok = false;
            } else {
                path.push(value.clone());
            }
        }
        ok.then_some(path)
    }

    /// The fields common to allow, deny and approve rules; `None` after reporting errors.
    fn rule<T>(
        &mut self,
        file: usize,
        at: &Spanned<T>,
        parts: RuleParts<'_>,
        names: &mut HashMap<String, SourceLocation>,
    ) -> Option<AccessRule> {
        let source = self.location(file, at);
        let mut ok = true;
        let name = match parts.name {
            Some(written) => {
                ok &= self.claim_rule_name(file, written, names);
                written.get_ref().clone()
            }
            None => format!("{}[{}]", parts.kind, parts.index),
        };

        if parts.operations.get_ref().is_empty() {
            self.error(
                file,
                parts.operations,
                "`operations` must not be empty: list what the rule is about, e.g. [\"read\"]",
            );
            ok = false;
        }
        let mut operations = Vec::new();
        for written in parts.operations.get_ref() {
            let Some(op) = Operation::from_name(written.get_ref()) else {
                let known = Operation::ALL
                    .iter()
                    .map(|op| op.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                let message = format!(
                    "unknown operation `{}` (operations: {known})",
                    written.get_ref()
                );
                self.error(file, written, message);
                ok = false;
                continue;
            };
            if operations.contains(&op) {
                let message = format!("operation `{op}` is listed twice");
                self.error(file, written, message);
                ok = false;
                continue;
            }
            if op == Operation::Call && parts.kind == "allow" {
                self.error(
                    file,
                    written,
                    "CALL is allowed per procedure, not by an allow rule: list the procedures in \
                     `functions = { allow = [\"schema.procedure\"] }`",
                );
                ok = false;
                continue;
            }
            if !op.has_objects() && parts.tables.is_some() {
                let message = format!(
                    "operation `{op}` concerns no table, so a rule with `tables` never matches \
                     it: put it in a rule without `tables`"
                );
                self.error(file, written, message);
                ok = false;
                continue;
            }
            operations.push(op);
        }

        let tables = match parts.tables {
            None => None,
            Some(written) => {
                if written.get_ref().is_empty() {
                    self.error(
                        file,
                        written,
                        "`tables = []` matches nothing: list `schema.table` patterns, or remove \
                         `tables` to match every table",
                    );
                    ok = false;
                }
                let mut patterns = Vec::new();
                for pattern in written.get_ref() {
                    match ObjectPattern::parse(pattern.get_ref()) {
                        Ok(p) => patterns.push(p),
                        Err(message) => {
                            self.error(file, pattern, message);
                            ok = false;
                        }
                    }
                }
                Some(patterns)
            }
        };

        ok.then_some(AccessRule {
            name,
            operations,
            tables,
            reason: None,
            source,
        })
    }

    fn approval_rule(
        &mut self,
        file: usize,
        index: usize,
        raw: &Spanned<RawApprovalRule>,
        names: &mut HashMap<String, SourceLocation>,
    ) -> Option<ApprovalRule> {
        let r = raw.get_ref();
        let parts = RuleParts {
            kind: "approve",
            index,
            name: r.name.as_ref(),
            operations: &r.operations,
            tables: r.tables.as_ref(),
        };
        let rule = self.rule(file, raw, parts, names);
        let mut ok = true;

        let approvers = match &r.approvers {
            None => 1,
            Some(n) if (1..=MAX_APPROVERS).contains(n.get_ref()) => *n.get_ref() as u32,
            Some(n) => {
                let message = format!(
                    "approvers = {} is out of range: it must be between 1 and {MAX_APPROVERS}",
                    n.get_ref()
                );
                self.error(file, n, message);
                ok = false;
                0
            }
        };

        let mut groups: Vec<String> = Vec::new();
        if let Some(written) = &r.groups {
            for group in written.get_ref() {
                let g = group.get_ref();
                let valid = !g.is_empty()
                    && g.len() <= MAX_GROUP_LEN
                    && g.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@'));
                if !valid {
                    let message = format!(
                        "invalid group name `{g}`: use 1 to {MAX_GROUP_LEN} characters among \
                         `A-Z`, `a-z`, `0-9`, `_`, `-`, `.` and `@`"
                    );
                    self.error(file, group, message);
                    ok = false;
                } else if groups.contains(g) {
                    let message = format!("group `{g}` is listed twice");
                    self.error(file, group, message);
                    ok = false;
                } else {
                    groups.push(g.clone());
                }
            }
        }

        let timeout = match &r.timeout {
            None => Some(DEFAULT_APPROVAL_TIMEOUT),
            Some(written) => {
                let value = written.get_ref();
                let message = match humantime::parse_duration(value) {
                    Ok(t) if (MIN_APPROVAL_TIMEOUT..=MAX_APPROVAL_TIMEOUT).contains(&t) => None,
                    Ok(_) => Some(format!(
                        "timeout `{value}` is out of range: it must be between 10s and 24h"
                    )),
                    Err(e) => Some(format!(
                        "invalid timeout `{value}`: {e}; expected a duration such as \"10m\""
                    )),
                };
                match message {
                    None => humantime::parse_duration(value).ok(),
                    Some(message) => {
                        self.error(file, written, message);
                        None
                    }
                }
            }
        };

        match (rule, timeout) {
            (Some(rule), Some(timeout)) if ok => Some(ApprovalRule {
                rule,
                approvers,
                groups,
                timeout,
            }),
            _ => None,
        }
    }

    fn function_rules(&mut self, file: usize, raw: &RawFunctions) -> Option<FunctionRules> {
        let mut ok = true;
        let mut parse = |v: &mut Self, list: &[Spanned<String>]| -> Vec<FunctionPattern> {
            let mut patterns = Vec::new();
            for written in list {
                let source = v.location(file, written);
                match FunctionPattern::parse(written.get_ref(), source) {
                    Ok(p) => patterns.push(p),
                    Err(message) => {
                        v.error(file, written, message);
                        ok = false;
                    }
                }
            }
            patterns
        };
        let allow = parse(self, &raw.allow);
        let deny = parse(self, &raw.deny);
        ok.then_some(FunctionRules { allow, deny })
    }

    /// Records a pattern as used by `workload`; false (and an error) if it
    /// already is, by this workload or another one (the same pattern in two
    /// workloads would make every matching job ambiguous).
    fn claim_pattern(&mut self, file: usize, workload: &str, written: &Spanned<String>) -> bool {
        let pattern = written.get_ref();
        if let Some((owner, at)) = self.pattern_owners.get(pattern) {
            let message = if owner == workload {
                format!(
                    "cgroup pattern `{pattern}` is listed twice in workload `{workload}` (first \
                     at {at})"
                )
            } else {
                format!(
                    "cgroup pattern `{pattern}` is already used by workload `{owner}` ({at}): a \
                     cgroup may belong to only one workload"
                )
            };
            self.error(file, written, message);
            return false;
        }
        let at = self.location(file, written);
        self.pattern_owners
            .insert(pattern.clone(), (workload.to_string(), at));
        true
    }

    fn unknown_target_message(&self, target: &str) -> String {
        let mut known: Vec<&str> = self.target_defs.keys().map(String::as_str).collect();
        known.sort_unstable();
        if known.is_empty() {
            format!("unknown target `{target}`: no [[target]] is defined")
        } else {
            let known = known
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ");
            format!("unknown target `{target}` (defined targets: {known})")
        }
    }
}

/// The fields shared by the three kinds of access rules, as written.
struct RuleParts<'r> {
    /// `allow`, `deny` or `approve`: the list the rule is in.
    kind: &'static str,
    /// Index in that list (for the generated name).
    index: usize,
    name: Option<&'r Spanned<String>>,
    operations: &'r Spanned<Vec<Spanned<String>>>,
    tables: Option<&'r Spanned<Vec<Spanned<String>>>>,
}

/// A custom mask pattern: a regular expression (Rust `regex` syntax) whose every match is at
/// least one character long.
fn mask_pattern(pattern: &str) -> Result<Regex, String> {
    let hir = regex_syntax::Parser::new().parse(pattern).map_err(|e| {
        let (kind, column) = match &e {
            regex_syntax::Error::Parse(e) => (e.kind().to_string(), e.span().start.column),
            regex_syntax::Error::Translate(e) => (e.kind().to_string(), e.span().start.column),
            other => (first_line(&other.to_string()).to_string(), 1),
        };
        format!("invalid regular expression `{pattern}`: {kind} (at character {column})")
    })?;
    match hir.properties().minimum_len() {
        None => Err(format!(
            "regular expression `{pattern}` never matches anything"
        )),
        Some(0) => Err(format!(
            "regular expression `{pattern}` can match the empty string: make every match at \
             least one character long (e.g. `x+` rather than `x*`)"
        )),
        Some(_) => Regex::new(pattern).map_err(|e| {
            format!(
                "invalid regular expression `{pattern}`: {}",
                first_line(&e.to_string())
            )
        }),
    }
}

fn first_line(s: &str) -> &str {
    s.lines().find(|l| !l.trim().is_empty()).unwrap_or(s).trim()
}

/// `[a-z0-9][a-z0-9_-]{0,47}`
fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    name.len() <= MAX_NAME_LEN
        && (first.is_ascii_lowercase() || first.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// A DNS name a certificate can be verified against: dot-separated labels of
/// 1 to 63 characters among `A-Z`, `a-z`, `0-9`, `-` and `_`, not starting or
/// ending with `-`; at most 253 characters; no wildcard, no trailing dot; the
/// last label is not all digits (that would be a malformed IP address).
fn is_valid_dns_name(name: &str) -> bool {
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    let last_is_numeric = name
        .rsplit('.')
        .next()
        .is_some_and(|last| last.chars().all(|c| c.is_ascii_digit()));
    name.len() <= 253 && name.split('.').all(label_ok) && !last_is_numeric
}

/// `[A-Za-z_][A-Za-z0-9_]*`
fn is_valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) if first.is_ascii_alphabetic() || first == '_' => {
            chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        }
        _ => false,
    }
}

/// An IP literal and a non-zero port; hostnames and unspecified addresses
/// are refused.
fn parse_address(written: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = match written.parse() {
        Ok(addr) => addr,
        Err(_) => return Err(address_parse_error(written)),
    };
    if addr.port() == 0 {
        return Err(format!("address `{written}`: port 0 is not allowed"));
    }
    if normalize_addr(addr).ip().is_unspecified() {
        return Err(format!(
            "address `{written}` is unspecified (0.0.0.0 or ::): list the concrete IP addresses \
             the service listens on"
        ));
    }
    Ok(addr)
}

fn address_parse_error(written: &str) -> String {
    const EXPECTED: &str =
        r#"expected an IP literal and a port, e.g. "127.0.0.1:5432" or "[::1]:5432""#;
    if let Ok(ip) = written.parse::<IpAddr>() {
        let example = match ip {
            IpAddr::V4(_) => format!("{ip}:5432"),
            IpAddr::V6(_) => format!("[{ip}]:5432"),
        };
        return format!("address `{written}` has no port: write it e.g. as \"{example}\"");
    }
    let host = match written.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() => host,
        Some(_) => return format!("invalid address `{written}`: {EXPECTED}"),
        None => written,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.parse::<IpAddr>().is_ok() {
        // e.g. an IPv6 address without brackets: `::1:5432`.
        return format!("invalid address `{written}`: {EXPECTED} (IPv6 needs brackets)");
    }
    let looks_like_hostname = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_');
    if looks_like_hostname {
        format!(
            "address `{written}` is not an IP literal: hostnames are not allowed (the kernel \
             matches IP addresses); list the IP addresses `{host}` resolves to, e.g. \
             \"127.0.0.1:5432\""
        )
    } else {
        format!("invalid address `{written}`: {EXPECTED}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_rules() {
        assert!(is_valid_name("orders-db"));
        assert!(is_valid_name("0day_etl"));
        assert!(is_valid_name(&"a".repeat(48)));
        assert!(!is_valid_name(&"a".repeat(49)));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("-x"));
        assert!(!is_valid_name("_x"));
        assert!(!is_valid_name("Orders"));
        assert!(!is_valid_name("orders.db"));
        assert!(!is_valid_name("ordérs"));
    }

    #[test]
    fn dns_name_rules() {
        assert!(is_valid_dns_name("orders.db.internal"));
        assert!(is_valid_dns_name("localhost"));
        assert!(is_valid_dns_name("db-1.example.com"));
        assert!(is_valid_dns_name("_pg.example.com"));
        assert!(is_valid_dns_name(&format!("{}.com", "a".repeat(63))));
        assert!(!is_valid_dns_name(&format!("{}.com", "a".repeat(64))));
        assert!(!is_valid_dns_name(&["abcdefghi"; 26].join(".")));
        assert!(!is_valid_dns_name(""));
        assert!(!is_valid_dns_name("*.example.com"));
        assert!(!is_valid_dns_name("example.com."));
        assert!(!is_valid_dns_name("a..b"));
        assert!(!is_valid_dns_name("-a.example.com"));
        assert!(!is_valid_dns_name("a-.example.com"));
        assert!(!is_valid_dns_name("orders db"));
        assert!(!is_valid_dns_name("db:5432"));
        assert!(!is_valid_dns_name("10.0.0.300"));
    }

    #[test]
    fn env_name_rules() {
        assert!(is_valid_env_name("ORDERS_DB_PASSWORD"));
        assert!(is_valid_env_name("_x1"));
        assert!(!is_valid_env_name(""));
        assert!(!is_valid_env_name("1X"));
        assert!(!is_valid_env_name("A-B"));
    }

    #[test]
    fn address_rules() {
        assert_eq!(
            parse_address("127.0.0.1:5432").unwrap(),
            "127.0.0.1:5432".parse().unwrap()
        );
        assert!(parse_address("[::1]:5432").is_ok());
        assert!(parse_address("[::ffff:10.0.0.1]:5432").is_ok());
        assert!(
            parse_address("db.internal:5432")
                .unwrap_err()
                .contains("hostnames")
        );
        assert!(
            parse_address("localhost:5432")
                .unwrap_err()
                .contains("hostnames")
        );
        assert!(
            parse_address("localhost")
                .unwrap_err()
                .contains("hostnames")
        );
        assert!(parse_address("127.0.0.1").unwrap_err().contains("no port"));
        assert!(parse_address("::1").unwrap_err().contains("[::1]:5432"));
        // `::1:5432` is itself a valid IPv6 address (no port).
        assert!(parse_address("::1:5432").unwrap_err().contains("no port"));
        assert!(
            parse_address("[::1]")
                .unwrap_err()
                .contains("invalid address")
        );
        assert!(
            parse_address("127.0.0.1:99999")
                .unwrap_err()
                .contains("invalid address")
        );
        assert!(parse_address("127.0.0.1:0").unwrap_err().contains("port 0"));
        assert!(
            parse_address("0.0.0.0:5432")
                .unwrap_err()
                .contains("unspecified")
        );
        assert!(
            parse_address("[::]:5432")
                .unwrap_err()
                .contains("unspecified")
        );
        assert!(
            parse_address("[::ffff:0.0.0.0]:5432")
                .unwrap_err()
                .contains("unspecified")
        );
    }
}
