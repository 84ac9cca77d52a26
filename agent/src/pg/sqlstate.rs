//! SQLSTATE codes the proxy uses when it answers a client itself (PostgreSQL Appendix A).
//!
//! Choosing the class matters to drivers: class 08 (connection exception) makes most of them
//! drop the connection, so a denied *statement* must use 42501, never an 08 code; a denied
//! *connection* uses 28000.

/// `successful_completion`.
pub const SUCCESSFUL_COMPLETION: &str = "00000";
/// `connection_exception` (class 08).
pub const CONNECTION_EXCEPTION: &str = "08000";
/// `sqlclient_unable_to_establish_sqlconnection`: the upstream server could not be reached.
pub const SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION: &str = "08001";
/// `connection_failure`: the upstream connection broke.
pub const CONNECTION_FAILURE: &str = "08006";
/// `protocol_violation`: malformed or unexpected protocol messages.
pub const PROTOCOL_VIOLATION: &str = "08P01";
/// `feature_not_supported`.
pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
/// `invalid_parameter_value`.
pub const INVALID_PARAMETER_VALUE: &str = "22023";
/// `character_not_in_repertoire` (invalid encoding).
pub const CHARACTER_NOT_IN_REPERTOIRE: &str = "22021";
/// `invalid_authorization_specification`: connection refused (who you are is not allowed).
pub const INVALID_AUTHORIZATION_SPECIFICATION: &str = "28000";
/// `invalid_password`.
pub const INVALID_PASSWORD: &str = "28P01";
/// `invalid_catalog_name`: the database does not exist (or may not be named).
pub const INVALID_CATALOG_NAME: &str = "3D000";
/// `syntax_error`.
pub const SYNTAX_ERROR: &str = "42601";
/// `insufficient_privilege`: statement denied by policy.
pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
/// `insufficient_resources`.
pub const INSUFFICIENT_RESOURCES: &str = "53000";
/// `out_of_memory`.
pub const OUT_OF_MEMORY: &str = "53200";
/// `too_many_connections`.
pub const TOO_MANY_CONNECTIONS: &str = "53300";
/// `program_limit_exceeded`: a message over a size cap.
pub const PROGRAM_LIMIT_EXCEEDED: &str = "54000";
/// `query_canceled`: also used for statements that timed out waiting (e.g. for an approval).
pub const QUERY_CANCELED: &str = "57014";
/// `admin_shutdown`.
pub const ADMIN_SHUTDOWN: &str = "57P01";
/// `cannot_connect_now`.
pub const CANNOT_CONNECT_NOW: &str = "57P03";
/// `io_error` (the agent could not write what it must, e.g. the session recording).
pub const IO_ERROR: &str = "58030";
/// `internal_error`.
pub const INTERNAL_ERROR: &str = "XX000";

/// Whether `code` is shaped like a SQLSTATE: five characters from `0-9A-Z`.
pub fn is_valid(code: &str) -> bool {
    code.len() == 5
        && code
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
}

/// Whether `code` is in class 08 (connection exception), which drivers treat as "connection
/// broken".
pub fn is_connection_exception(code: &str) -> bool {
    code.starts_with("08")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_are_well_formed_sqlstates() {
        for code in [
            SUCCESSFUL_COMPLETION,
            CONNECTION_EXCEPTION,
            SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION,
            CONNECTION_FAILURE,
            PROTOCOL_VIOLATION,
            FEATURE_NOT_SUPPORTED,
            INVALID_PARAMETER_VALUE,
            CHARACTER_NOT_IN_REPERTOIRE,
            INVALID_AUTHORIZATION_SPECIFICATION,
            INVALID_PASSWORD,
            INVALID_CATALOG_NAME,
            SYNTAX_ERROR,
            INSUFFICIENT_PRIVILEGE,
            INSUFFICIENT_RESOURCES,
            OUT_OF_MEMORY,
            TOO_MANY_CONNECTIONS,
            PROGRAM_LIMIT_EXCEEDED,
            QUERY_CANCELED,
            ADMIN_SHUTDOWN,
            CANNOT_CONNECT_NOW,
            INTERNAL_ERROR,
        ] {
            assert!(is_valid(code), "{code}");
        }
        assert!(!is_valid("08p01"));
        assert!(!is_valid("0800"));
    }

    #[test]
    fn statement_denial_is_not_a_connection_exception() {
        assert!(!is_connection_exception(INSUFFICIENT_PRIVILEGE));
        assert!(!is_connection_exception(
            INVALID_AUTHORIZATION_SPECIFICATION
        ));
        assert!(is_connection_exception(PROTOCOL_VIOLATION));
    }
}
