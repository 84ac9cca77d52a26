//! Helpers shared by the codec's tests.

use bytes::{BufMut, BytesMut};

use super::{BackendMessage, Caps, FrontendMessage, decode_backend, decode_frontend};

/// A tagged message with a correct length word.
pub(crate) fn tagged(tag: u8, body: &[u8]) -> BytesMut {
    let mut out = BytesMut::new();
    out.put_u8(tag);
    out.put_i32(i32::try_from(body.len() + 4).unwrap());
    out.put_slice(body);
    out
}

/// Decodes exactly one frontend message from `bytes`, asserting nothing is left.
pub(crate) fn decode_fe(bytes: &[u8]) -> FrontendMessage {
    let mut buf = BytesMut::from(bytes);
    let msg = decode_frontend(&mut buf, &Caps::default())
        .expect("decodes")
        .expect("complete");
    assert!(buf.is_empty(), "left over: {:?}", &buf[..]);
    msg
}

/// Decodes exactly one backend message from `bytes`, asserting nothing is left.
pub(crate) fn decode_be(bytes: &[u8]) -> BackendMessage {
    let mut buf = BytesMut::from(bytes);
    let msg = decode_backend(&mut buf, &Caps::default())
        .expect("decodes")
        .expect("complete");
    assert!(buf.is_empty(), "left over: {:?}", &buf[..]);
    msg
}

/// Encodes, decodes, and checks the result equals `msg`; returns the encoding.
pub(crate) fn roundtrip_fe(msg: &FrontendMessage) -> BytesMut {
    let mut out = BytesMut::new();
    msg.encode(&mut out);
    assert_eq!(&decode_fe(&out), msg);
    out
}

/// Encodes, decodes, and checks the result equals `msg`; returns the encoding.
pub(crate) fn roundtrip_be(msg: &BackendMessage) -> BytesMut {
    let mut out = BytesMut::new();
    msg.encode(&mut out);
    assert_eq!(&decode_be(&out), msg);
    out
}

/// Decoding `bytes` as a frontend message fails.
pub(crate) fn fe_err(bytes: &[u8]) -> super::CodecError {
    decode_frontend(&mut BytesMut::from(bytes), &Caps::default()).expect_err("must fail")
}

/// Decoding `bytes` as a backend message fails.
pub(crate) fn be_err(bytes: &[u8]) -> super::CodecError {
    decode_backend(&mut BytesMut::from(bytes), &Caps::default()).expect_err("must fail")
}
