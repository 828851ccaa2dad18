//! Looking up a partition's owning shard, done for every partition of every request.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shards::ShardMap;
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let topics: Vec<String> = (0..64).map(|i| format!("topic-{i}")).collect();
    let mut group = c.benchmark_group("partition_shard_map");
    group.throughput(Throughput::Elements(topics.len() as u64 * 16));
    for nr_shards in [2, 64] {
        let map = ShardMap::new(nr_shards);
        group.bench_function(format!("owner_{nr_shards}_shards"), |b| {
            b.iter(|| {
                let mut sum = 0;
                for topic in &topics {
                    for partition in 0..16 {
                        sum += map.owner(black_box(topic.as_bytes()), partition);
                    }
                }
                sum
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
