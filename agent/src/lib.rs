//! The chunk agent: transparent interception of batch jobs' database connections.
//!
//! Layout (pure core first, thin adapters after):
//! - [`policy`]: policy files (TOML) to a validated, plain-data [`policy::PolicySet`]. Pure.
//! - [`secrets`]: resolving a policy's secret references (files, environment) at use time.
//! - [`oidc`]: verification of workload tokens (JWT/OIDC) against an issuer's key set. Pure,
//!   apart from its key-set fetching adapter.
//! - [`identity`]: who is behind an intercepted connection (cgroup path -> workload). Pure.
//! - [`audit`]: structured audit events and their JSON-lines sink.
//! - [`record`]: per-session recordings (hash-chained JSON lines): write, verify, list, replay.
//! - [`cgroup`]: cgroup v2 discovery, path/id mapping, job cgroups. Adapter (files).
//! - [`intercept`]: loads and attaches the eBPF programs, fills their maps. Adapter (aya).
//! - [`pg`]: PostgreSQL wire protocol (v3.0/v3.2) codec and SQLSTATEs. Pure.
//! - [`sql`]: SQL statements (parsed with libpg_query) classified by effect, and decided
//!   against a workload's access rules for a target, with a decision cache. Pure.
//! - [`mask`]: masking of result rows, COPY data, error texts and notifications by a
//!   workload's mask rules for a target (column rules, content detectors). Pure.
//! - [`proxy`]: accepts redirected connections, identifies them, relays. Adapter (sockets).
//! - [`scope`]: which cgroups are intercepted and where the programs attach. Pure.
//! - [`approval`]: statements held until approvers approve them, time-bound grants, the
//!   approval HTTP API and its CLI client (pure book, async hub, adapters).
//! - [`daemon`]: `agent run`, wiring all of the above; keeps the scope current.
//! - [`exec`]: `agent exec`, running a command inside a fresh workload cgroup. Adapter.
#![forbid(unsafe_code)]

pub mod approval;
pub mod audit;
pub mod cgroup;
pub mod daemon;
pub mod exec;
pub mod identity;
pub mod intercept;
pub mod mask;
pub mod oidc;
pub mod pg;
pub mod policy;
pub mod proxy;
pub mod record;
pub mod scope;
pub mod secrets;
pub mod sql;
