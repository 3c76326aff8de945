//! Kernel throughput: the pi kernel at each SIMD level on one core, and the best level on
//! every core at once (the "plain loop on all cores" the cluster's end-to-end figures are
//! compared with).
//!
//! `cargo bench -p marmotd --bench kernels`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use marmotd::kernels::pi::count_inside;
use marmotd::kernels::simd::Level;
use marmotd::kernels::Cancel;
use std::hint::black_box;

const SAMPLES: u64 = 1 << 26;

fn per_level(c: &mut Criterion) {
    let mut group = c.benchmark_group("pi/one-core");
    group.throughput(Throughput::Elements(SAMPLES));
    group.sample_size(10);
    for level in Level::available() {
        group.bench_function(level.name(), |b| {
            let cancel = Cancel::default();
            b.iter(|| count_inside(level, black_box(42), 0, SAMPLES, &cancel))
        });
    }
    group.finish();
}

fn all_cores(c: &mut Criterion) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let mut group = c.benchmark_group("pi/all-cores");
    group.throughput(Throughput::Elements(SAMPLES * cores));
    group.sample_size(10);
    group.bench_function(format!("{}x{}", cores, Level::detect().name()), |b| {
        let cancel = Cancel::default();
        b.iter(|| {
            std::thread::scope(|s| {
                let handles: Vec<_> = (0..cores)
                    .map(|i| {
                        let cancel = &cancel;
                        s.spawn(move || {
                            count_inside(
                                Level::detect(),
                                42,
                                i * SAMPLES,
                                (i + 1) * SAMPLES,
                                cancel,
                            )
                        })
                    })
                    .collect();
                handles.into_iter().filter_map(|h| h.join().ok()).count()
            })
        })
    });
    group.finish();
}

criterion_group!(benches, per_level, all_cores);
criterion_main!(benches);
