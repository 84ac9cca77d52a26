//! The PostgreSQL codec on the proxy's hot path, per message:
//!
//! - `frontend/*`: decoding what `pgbench -S` sends per transaction: a simple `Query`
//!   (`-M simple`), and `Bind` + `Execute` + `Sync` (`-M prepared`);
//! - `frontend_reencode/*`: the same, decoded and encoded again (what the relay did before it
//!   forwarded the client's own bytes);
//! - `backend/peek_data_row`: framing one 3-column DataRow (what the relay does per row it
//!   does not inspect), and `backend/decode_data_row`: decoding it.
//!
//! `cargo bench -p agent --bench codec -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use chunk_agent::pg::codec::{
    BackendMessage, Caps, FrontendMessage,
    backend::DataRow,
    decode_backend, decode_frontend,
    frontend::{Bind, Execute, Query},
    peek_frame_capped,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn simple_batch() -> BytesMut {
    let mut out = BytesMut::new();
    FrontendMessage::Query(Query {
        sql: "SELECT abalance FROM pgbench_accounts WHERE aid = 48213;".into(),
    })
    .encode(&mut out);
    out
}

fn prepared_batch() -> BytesMut {
    let mut out = BytesMut::new();
    FrontendMessage::Bind(Bind {
        portal: String::new(),
        statement: "P0_1".into(),
        param_formats: vec![],
        params: vec![Some(Bytes::from_static(b"48213"))],
        result_formats: vec![],
    })
    .encode(&mut out);
    FrontendMessage::Execute(Execute {
        portal: String::new(),
        max_rows: 0,
    })
    .encode(&mut out);
    FrontendMessage::Sync.encode(&mut out);
    out
}

/// Decodes every message of `batch`; with `reencode`, encodes each again.
fn decode_all(batch: &BytesMut, caps: &Caps, reencode: bool) -> usize {
    let mut buf = batch.clone();
    let mut out = BytesMut::new();
    let mut n = 0;
    while let Some(msg) = decode_frontend(&mut buf, caps).unwrap() {
        if reencode {
            msg.encode(&mut out);
        }
        n += 1;
    }
    n + out.len()
}

fn frontend(c: &mut Criterion) {
    let caps = Caps::default();
    for (name, batch) in [("simple", simple_batch()), ("prepared", prepared_batch())] {
        let mut group = c.benchmark_group("frontend");
        group.throughput(Throughput::Bytes(batch.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| decode_all(black_box(&batch), &caps, false))
        });
        group.finish();
        let mut group = c.benchmark_group("frontend_reencode");
        group.throughput(Throughput::Bytes(batch.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| decode_all(black_box(&batch), &caps, true))
        });
        group.finish();
    }
}

fn backend(c: &mut Criterion) {
    let caps = Caps::default();
    let mut frame = BytesMut::new();
    let values: [Option<&[u8]>; 3] = [
        Some(b"48213"),
        Some(b"c4ca4238a0b923820dcc509a6f75849b"),
        Some(b"group-213"),
    ];
    BackendMessage::DataRow(DataRow::from_values(values).unwrap()).encode(&mut frame);
    let mut group = c.benchmark_group("backend");
    group.throughput(Throughput::Elements(1));
    group.bench_function("peek_data_row", |b| {
        b.iter(|| peek_frame_capped(black_box(&frame), caps.max_backend_message))
    });
    group.bench_function("decode_data_row", |b| {
        b.iter(|| {
            let mut buf = frame.clone();
            decode_backend(&mut buf, &caps).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, frontend, backend);
criterion_main!(benches);
