//! Client messages: decoding arbitrary bytes never panics, and whatever decodes re-encodes to
//! the exact bytes it came from and decodes again to the same value. Also exercises the 'p'
//! helpers and checks `peek_frame` agrees with the decoder on frame boundaries.
#![no_main]

use bytes::BytesMut;
use chunk_agent::pg::codec::frontend::FrontendMessage;
use chunk_agent::pg::codec::{Caps, decode_frontend, peek_frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let caps = Caps::default();
    let mut buf = BytesMut::from(data);
    loop {
        let before = buf.len();
        let header = peek_frame(&buf);
        let Ok(Some(msg)) = decode_frontend(&mut buf, &caps) else {
            break;
        };
        let consumed = &data[data.len() - before..data.len() - buf.len()];
        let header = header
            .expect("decoded frame has a valid header")
            .expect("complete");
        assert_eq!(header.frame_len(), consumed.len());
        assert_eq!(header.tag, msg.tag());

        let mut out = BytesMut::new();
        msg.encode(&mut out);
        assert_eq!(&out[..], consumed, "re-encoding differs for {msg:?}");
        let again = decode_frontend(&mut out, &caps)
            .expect("re-encoded message decodes")
            .expect("re-encoded message is complete");
        assert_eq!(again, msg);
        assert!(out.is_empty());

        if let FrontendMessage::PasswordMessage(p) = &msg {
            let _ = p.password();
            let _ = p.sasl_response();
            if let Ok(initial) = p.sasl_initial_response() {
                let mut out = BytesMut::new();
                initial.encode(&mut out);
                assert_eq!(&out[..], consumed);
            }
        }
    }
});
