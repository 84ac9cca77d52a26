//! Session tracker: an arbitrary interleaving of client and server messages never panics and
//! keeps the tracker within its limits.
//!
//! Input: records of one selector byte then one tagged message. Selector bit 0: 0 a client
//! message (`decode_frontend`, fed to `on_frontend`), 1 a server message; for a server
//! message, bit 1 picks `on_backend` (decoded) or `on_backend_tag` (raw frame, any tag). The
//! first record that does not decode ends the input.
#![no_main]

use bytes::{Buf, BytesMut};
use chunk_agent::pg::codec::{Caps, decode_backend, decode_frontend, peek_frame};
use chunk_agent::pg::session::{SessionTracker, TrackerLimits};
use libfuzzer_sys::fuzz_target;

const LIMITS: TrackerLimits = TrackerLimits {
    max_pending: 32,
    max_statements: 4,
    max_portals: 4,
    max_metadata_bytes: 4096,
};

fuzz_target!(|data: &[u8]| {
    let caps = Caps::default();
    let mut tracker = SessionTracker::new(LIMITS);
    let mut buf = BytesMut::from(data);
    while let Some(&selector) = buf.first() {
        buf.advance(1);
        if selector & 1 == 0 {
            let Ok(Some(msg)) = decode_frontend(&mut buf, &caps) else {
                break;
            };
            let before = tracker.pending();
            if tracker.on_frontend(&msg).is_err() {
                assert_eq!(
                    tracker.pending(),
                    before,
                    "a refused message is not recorded"
                );
            }
        } else if selector & 2 == 0 {
            let Ok(Some(msg)) = decode_backend(&mut buf, &caps) else {
                break;
            };
            let attribution = tracker.on_backend(&msg);
            let _ = (attribution.id(), attribution.row_description());
        } else {
            let Ok(Some(header)) = peek_frame(&buf) else {
                break;
            };
            if buf.len() < header.frame_len() {
                break;
            }
            let frame = buf.split_to(header.frame_len());
            let attribution = tracker.on_backend_tag(header.tag, &frame[5..]);
            let _ = (attribution.id(), attribution.completes());
        }
        assert!(tracker.pending() <= LIMITS.max_pending);
        assert!(tracker.statement_count() <= LIMITS.max_statements + 1);
        assert!(tracker.portal_count() <= LIMITS.max_portals + 1);
        let _ = tracker.front().map(|r| r.row_description());
    }
});
