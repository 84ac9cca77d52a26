//! Startup packets: decoding arbitrary bytes never panics, and whatever decodes re-encodes to
//! the exact bytes it came from and decodes again to the same value.
#![no_main]

use bytes::BytesMut;
use chunk_agent::pg::codec::{Caps, decode_startup};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let caps = Caps::default();
    let mut buf = BytesMut::from(data);
    loop {
        let before = buf.len();
        let Ok(Some(msg)) = decode_startup(&mut buf, &caps) else {
            break;
        };
        let consumed = &data[data.len() - before..data.len() - buf.len()];
        let mut out = BytesMut::new();
        msg.encode(&mut out);
        assert_eq!(&out[..], consumed, "re-encoding differs for {msg:?}");
        let again = decode_startup(&mut out, &caps)
            .expect("re-encoded packet decodes")
            .expect("re-encoded packet is complete");
        assert_eq!(again, msg);
        assert!(out.is_empty());
    }
});
