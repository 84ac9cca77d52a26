//! `agent approvals list|show|approve|deny|grant|revoke`: the approval API's command-line
//! client. The approver's token is read from `--token-file` and only ever sent in the
//! `Authorization` header.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{Value, json};
use zeroize::Zeroizing;

/// Talk to a running agent's approval API.
#[derive(Debug, clap::Args)]
pub struct ApprovalsArgs {
    /// The approval API's base URL.
    #[arg(long, global = true, default_value = "http://127.0.0.1:15480")]
    pub url: String,
    /// File holding the approver's token (a JWT from the identity provider).
    #[arg(long, global = true)]
    pub token_file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: ApprovalsCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum ApprovalsCommand {
    /// Pending requests, live grants and recent decisions.
    List,
    /// One request (pending or recently decided), as JSON.
    Show { id: String },
    /// Approve a request.
    Approve { id: String },
    /// Deny a request.
    Deny { id: String },
    /// Let a workload run a class of statements on a target without waiting, for a while.
    Grant {
        #[arg(long)]
        workload: String,
        #[arg(long)]
        target: String,
        /// Policy operations, comma-separated (`write,bulk_write`; `bulk_write` and `copy_in`
        /// imply `write`, `copy_out` implies `read`).
        #[arg(long, value_delimiter = ',', required = true)]
        operations: Vec<String>,
        /// `schema.table` patterns, comma-separated (omit for operations on no table).
        #[arg(long, value_delimiter = ',')]
        tables: Vec<String>,
        /// How long (e.g. `2h`, at most 24h).
        #[arg(long = "for")]
        duration: String,
        /// Why (kept in the audit log).
        #[arg(long)]
        reason: Option<String>,
    },
    /// End a grant before its time.
    Revoke { id: String },
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("a token is needed: --token-file FILE")]
    NoToken,
    #[error("cannot read the token file {path}: {source}")]
    TokenFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the token file {0} is empty")]
    EmptyToken(PathBuf),
    #[error("cannot reach the approval API at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{status}: {message}")]
    Refused { status: u16, message: String },
}

/// A client of one approval API, as one approver.
pub struct ApprovalClient {
    base: String,
    token: Zeroizing<String>,
    http: reqwest::Client,
}

impl ApprovalClient {
    pub fn new(base: &str, token: Zeroizing<String>) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ClientError::Unreachable {
                url: base.to_string(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            token,
            http,
        })
    }

    /// Reads the token file (surrounding whitespace removed).
    pub fn read_token(path: &std::path::Path) -> Result<Zeroizing<String>, ClientError> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
            ClientError::TokenFile {
                path: path.to_path_buf(),
                source,
            }
        })?);
        let token = Zeroizing::new(text.trim().to_string());
        if token.is_empty() {
            return Err(ClientError::EmptyToken(path.to_path_buf()));
        }
        Ok(token)
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut request = self
            .http
            .request(method, &url)
            .bearer_auth(self.token.as_str());
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| ClientError::Unreachable {
            url: self.base.clone(),
            reason: e.without_url().to_string(),
        })?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            Ok(body)
        } else {
            Err(ClientError::Refused {
                status: status.as_u16(),
                message: super::api::error_message(&body)
                    .unwrap_or("no reason given")
                    .to_string(),
            })
        }
    }

    pub async fn list(&self) -> Result<Value, ClientError> {
        self.call(reqwest::Method::GET, "/approvals", None).await
    }

    pub async fn show(&self, id: &str) -> Result<Value, ClientError> {
        self.call(
            reqwest::Method::GET,
            &format!("/approvals/{}", segment(id)),
            None,
        )
        .await
    }

    pub async fn approve(&self, id: &str) -> Result<Value, ClientError> {
        let path = format!("/approvals/{}/approve", segment(id));
        self.call(reqwest::Method::POST, &path, None).await
    }

    pub async fn deny(&self, id: &str) -> Result<Value, ClientError> {
        let path = format!("/approvals/{}/deny", segment(id));
        self.call(reqwest::Method::POST, &path, None).await
    }

    pub async fn grant(&self, body: Value) -> Result<Value, ClientError> {
        self.call(reqwest::Method::POST, "/grants", Some(body))
            .await
    }

    pub async fn revoke(&self, id: &str) -> Result<Value, ClientError> {
        let path = format!("/grants/{}", segment(id));
        self.call(reqwest::Method::DELETE, &path, None).await
    }
}

/// An id as one URL path segment (ids are `r-xxxx-N`; anything else is percent-encoded).
fn segment(id: &str) -> String {
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Runs `agent approvals ...`: exit 0 on success, 1 when the API refused or failed.
pub fn run(args: ApprovalsArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("agent approvals: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(args)) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("agent approvals: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Does the command; returns what to print.
pub async fn execute(args: ApprovalsArgs) -> Result<String, ClientError> {
    let path = args.token_file.ok_or(ClientError::NoToken)?;
    let client = ApprovalClient::new(&args.url, ApprovalClient::read_token(&path)?)?;
    Ok(match args.command {
        ApprovalsCommand::List => format_listing(&client.list().await?),
        ApprovalsCommand::Show { id } => {
            format!("{:#}\n", client.show(&id).await?)
        }
        ApprovalsCommand::Approve { id } => format_vote(&client.approve(&id).await?),
        ApprovalsCommand::Deny { id } => format_vote(&client.deny(&id).await?),
        ApprovalsCommand::Grant {
            workload,
            target,
            operations,
            tables,
            duration,
            reason,
        } => {
            let grant = client
                .grant(json!({
                    "workload": workload, "target": target, "operations": operations,
                    "tables": tables, "duration": duration, "reason": reason,
                }))
                .await?;
            format!(
                "grant {} created: {} until {}\n",
                text(&grant["id"]),
                grant_line(&grant),
                text(&grant["expires_at"])
            )
        }
        ApprovalsCommand::Revoke { id } => {
            let grant = client.revoke(&id).await?;
            format!(
                "grant {} revoked: {}\n",
                text(&grant["id"]),
                grant_line(&grant)
            )
        }
    })
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn joined(v: &Value) -> String {
    match v.as_array() {
        Some(items) if !items.is_empty() => items.iter().map(text).collect::<Vec<_>>().join(","),
        _ => "-".into(),
    }
}

fn grant_line(g: &Value) -> String {
    format!(
        "{} may {} on {} of {} (by {})",
        text(&g["workload"]),
        joined(&g["operations"]),
        joined(&g["tables"]),
        text(&g["target"]),
        text(&g["by"])
    )
}

fn format_vote(v: &Value) -> String {
    let id = text(&v["id"]);
    match v["outcome"].as_str() {
        Some("approved") => format!("request {id} approved by {}\n", joined(&v["approvers"])),
        Some("denied") => format!("request {id} denied by {}\n", text(&v["by"])),
        Some("already-counted") => format!(
            "request {id}: your approval was already counted ({} of {})\n",
            text(&v["approvals"]),
            text(&v["needed"])
        ),
        _ => format!(
            "request {id}: approval recorded ({} of {})\n",
            text(&v["approvals"]),
            text(&v["needed"])
        ),
    }
}

/// The listing as text: pending requests, grants, recent decisions.
pub fn format_listing(v: &Value) -> String {
    let mut out = String::new();
    let empty = Vec::new();
    let pending = v["pending"].as_array().unwrap_or(&empty);
    out.push_str(&format!("pending requests: {}\n", pending.len()));
    for p in pending {
        let s = &p["statement"];
        let rules: Vec<String> = s["needs"]
            .as_array()
            .unwrap_or(&empty)
            .iter()
            .map(|n| text(&n["rule"]))
            .collect();
        out.push_str(&format!(
            "  {}  {} on {}  {} {}  rule {}  {}/{} approvals  expires {}\n",
            text(&p["id"]),
            text(&p["workload"]),
            text(&p["target"]),
            joined(&s["kinds"]),
            joined(&s["tables"]),
            rules.join(","),
            p["approvals"].as_array().map_or(0, Vec::len),
            text(&p["approvers_needed"]),
            text(&p["expires_at"]),
        ));
        if let Some(sql) = s["text"].as_str() {
            out.push_str(&format!("      {sql}\n"));
        }
    }
    let grants = v["grants"].as_array().unwrap_or(&empty);
    out.push_str(&format!("grants: {}\n", grants.len()));
    for g in grants {
        out.push_str(&format!(
            "  {}  {} until {}\n",
            text(&g["id"]),
            grant_line(g),
            text(&g["expires_at"])
        ));
    }
    let recent = v["recent"].as_array().unwrap_or(&empty);
    if !recent.is_empty() {
        out.push_str(&format!("recent decisions: {}\n", recent.len()));
        for d in recent.iter().take(20) {
            out.push_str(&format!(
                "  {}  {} on {}  {} at {}\n",
                text(&d["id"]),
                text(&d["workload"]),
                text(&d["target"]),
                text(&d["outcome"]),
                text(&d["decided_at"]),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_single_path_segments() {
        assert_eq!(segment("r-7f3a-12"), "r-7f3a-12");
        assert_eq!(segment("../grants/x"), "..%2Fgrants%2Fx");
    }

    #[test]
    fn the_token_file_is_trimmed_and_must_not_be_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "  abc.def.ghi\n").unwrap();
        assert_eq!(
            ApprovalClient::read_token(&path).unwrap().as_str(),
            "abc.def.ghi"
        );
        std::fs::write(&path, "\n").unwrap();
        assert!(matches!(
            ApprovalClient::read_token(&path),
            Err(ClientError::EmptyToken(_))
        ));
    }
}
