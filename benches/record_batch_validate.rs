//! Validating produced record batches: header parse and CRC-32C over every byte.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kafka_protocol::records::{Compression, Record, TimestampType};
use tidegate::record_batch::{encode_batch, parse_produce_batches};

fn batch(count: i32, compression: Compression) -> Bytes {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: 1,
            producer_epoch: 0,
            timestamp_type: TimestampType::Creation,
            offset: i64::from(i),
            sequence: i,
            timestamp: 1_700_000_000_000,
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(format!("{i:>1000}"))),
            headers: Default::default(),
        })
        .collect();
    encode_batch(&records, compression).expect("encode")
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("record_batch_validate");
    for (name, compression) in [("none", Compression::None), ("lz4", Compression::Lz4)] {
        let bytes = batch(100, compression);
        group.throughput(Throughput::Elements(100));
        group.bench_function(format!("100x1KB_{name}"), |b| {
            b.iter(|| parse_produce_batches(&bytes).expect("valid"))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
