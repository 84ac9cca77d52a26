//! Server messages: decoding arbitrary bytes never panics, and whatever decodes re-encodes to
//! the exact bytes it came from and decodes again to the same value. DataRows are also
//! rewritten (identity and masking) to check the rebuilt rows stay valid with NULLs intact.
#![no_main]

use bytes::{Bytes, BytesMut};
use chunk_agent::pg::codec::backend::{BackendMessage, DataRow, Replacement};
use chunk_agent::pg::codec::{Caps, decode_backend, peek_frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let caps = Caps::default();
    let mut buf = BytesMut::from(data);
    loop {
        let before = buf.len();
        let header = peek_frame(&buf);
        let Ok(Some(msg)) = decode_backend(&mut buf, &caps) else {
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
        let again = decode_backend(&mut out, &caps)
            .expect("re-encoded message decodes")
            .expect("re-encoded message is complete");
        assert_eq!(again, msg);
        assert!(out.is_empty());

        if let BackendMessage::DataRow(row) = &msg {
            check_rewrites(row);
        }
    }
});

fn check_rewrites(row: &DataRow) {
    let same = row
        .rewrite(|_, _| Replacement::Keep)
        .expect("identity rewrite");
    assert_eq!(&same, row);
    let masked = row
        .rewrite(|i, v| match (i % 3, v) {
            (0, Some(_)) => Replacement::Value(Bytes::from_static(b"***")),
            (1, _) => Replacement::Null,
            _ => Replacement::Keep,
        })
        .expect("masking rewrite");
    assert_eq!(masked.len(), row.len());
    for (i, (before, after)) in row.values().zip(masked.values()).enumerate() {
        match i % 3 {
            0 => assert_eq!(after, before.map(|_| &b"***"[..])),
            1 => assert_eq!(after, None),
            _ => assert_eq!(after, before),
        }
    }
    assert_eq!(
        DataRow::from_body(masked.body().clone()).expect("rebuilt row is valid"),
        masked
    );
}
