//! Removes just-in-time roles that their sessions did not drop (agent crash, restart, network
//! failure at session end): at start-up every role this host made, then periodically any host's
//! expired roles. Socket adapter over [`super::ephemeral`].

use std::{sync::Arc, time::Duration};

use super::{auth::UpstreamAuth, ephemeral, serve::PgShared, upstream::UpstreamError};
use crate::{
    audit::{self, AuditLog},
    policy::{CredentialMode, PolicySet, Target},
    secrets,
};

/// How often expired roles are looked for after start-up.
pub const REAP_INTERVAL: Duration = Duration::from_secs(300);

/// Reaps once, now, for every target with ephemeral credentials. `at_startup` also removes this
/// host's unexpired roles.
pub async fn reap_all(shared: &PgShared, policy: &PolicySet, audit: &AuditLog, at_startup: bool) {
    for target in &policy.targets {
        let Some(credentials) = &target.credentials else {
            continue;
        };
        if !matches!(credentials.mode, CredentialMode::Ephemeral { .. }) {
            continue;
        }
        if let Err(err) = reap_target(shared, target, audit, at_startup).await {
            tracing::warn!(target = %target.name, %err, "reaping just-in-time roles failed");
            audit.emit(audit::agent_error(&format!(
                "reaping just-in-time roles of target {}: {err}",
                target.name
            )));
        }
    }
}

async fn reap_target(
    shared: &PgShared,
    target: &Target,
    audit: &AuditLog,
    at_startup: bool,
) -> Result<(), UpstreamError> {
    let Some(credentials) = &target.credentials else {
        return Ok(());
    };
    let Some(address) = target.addresses.first() else {
        return Ok(());
    };
    let endpoint = shared.endpoint(target, *address)?;
    let secret = secrets::resolve(&credentials.password).map_err(|e| UpstreamError::Protocol {
        target: target.name.clone(),
        reason: e.to_string(),
    })?;
    let database = target
        .postgres
        .as_ref()
        .and_then(|pg| pg.database.clone())
        .unwrap_or_else(|| "postgres".to_owned());
    let admin_role = credentials.username.as_str();
    let mut admin = endpoint
        .login(
            vec![
                ("user".into(), admin_role.into()),
                ("database".into(), database),
                ("application_name".into(), "chunk-agent (jit reaper)".into()),
            ],
            admin_role,
            UpstreamAuth::new(admin_role, secret),
        )
        .await?;
    let host = at_startup.then_some(shared.host.as_str());
    let roles = admin
        .simple_query(&endpoint, &ephemeral::leftover_roles_sql(host))
        .await;
    let roles = match roles {
        Ok(roles) => roles,
        Err(e) => {
            admin.terminate().await;
            return Err(e);
        }
    };
    for role in roles.into_iter().flatten() {
        let result = admin
            .simple_query(&endpoint, &ephemeral::drop_role_sql(&role))
            .await;
        let error = result.err().map(|e| e.to_string());
        tracing::info!(target = %target.name, %role, error = ?error, "reaped a just-in-time role");
        audit.emit(audit::ephemeral_role(
            None,
            &target.name,
            &role,
            "ephemeral-role-reaped",
            error.as_deref(),
        ));
    }
    admin.terminate().await;
    Ok(())
}

/// Reaps now (with `at_startup`, also this host's unexpired roles), then every
/// [`REAP_INTERVAL`], until the task is dropped.
pub async fn run(
    shared: Arc<PgShared>,
    policy: Arc<PolicySet>,
    audit: Arc<AuditLog>,
    at_startup: bool,
) {
    reap_all(&shared, &policy, &audit, at_startup).await;
    let mut tick = tokio::time::interval(REAP_INTERVAL);
    tick.tick().await;
    loop {
        tick.tick().await;
        reap_all(&shared, &policy, &audit, false).await;
    }
}
