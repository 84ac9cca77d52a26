//! Session recordings: every session (one client connection) written to the agent's data
//! directory as a hash-chained JSON-lines file that can be verified, listed and replayed.
//!
//! - [`format`]: entries, their serialisation and the chain (the format is described there).
//! - [`writer`]: [`Recorder`], used by the proxy: appends entries, enforces the size cap,
//!   applies the fsync and on-error policies.
//! - [`reader`]: parses a recording back; [`verify`]: checks its chain and final digest.
//! - [`retention`]: deletes recordings beyond an age or a total size.
//! - [`index`]: lists sessions (`agent sessions`) and totals them (`agent report`).
//! - [`replay`]: renders a session with its timing (`agent replay`).

pub mod format;
pub mod index;
pub mod reader;
pub mod replay;
pub mod retention;
pub mod verify;
pub mod writer;

pub use format::{
    ApprovalEntry, ApprovalEvent, DEFAULT_DATA_DIR, DecisionEntry, ErrorInfo, Header, Param,
    ResultEntry, RowsEntry, StatementEntry, new_session_id, sessions_dir,
};
pub use writer::{Finished, FsyncPolicy, Limits, OnError, RecordError, Recorder};
