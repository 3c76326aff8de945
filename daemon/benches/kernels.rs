//! Kernel throughput, at each SIMD level on one core and at the best level on every core at
//! once (the "plain loop on all cores" the cluster's end-to-end figures are compared with):
//! pi samples, trial-division candidates (the notebook's 943349775459380173, whose full scan
//! is 2..=971,261,948), and random letters made and counted. Then freefall's heights for the
//! notebook's throw (2,048,688 points), closed form and RK4 with drag, on one core.
//!
//! `cargo bench -p marmotd --bench kernels`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use marmotd::kernels::count::{count_random, Pattern};
use marmotd::kernels::pi::count_inside;
use marmotd::kernels::prime::{trial, trial_units};
use marmotd::kernels::simd::Level;
use marmotd::kernels::Cancel;
use std::hint::black_box;

const SAMPLES: u64 = 1 << 26;

/// A kernel over units `start..end` at a level; its result is only black-boxed.
type Kernel = fn(Level, u64, u64, &Cancel) -> u64;

const NOTEBOOK_PRIME: u128 = 943_349_775_459_380_173;

fn pi(level: Level, start: u64, end: u64, cancel: &Cancel) -> u64 {
    count_inside(level, 42, start, end, cancel).unwrap_or(0)
}

fn prime(level: Level, start: u64, end: u64, cancel: &Cancel) -> u64 {
    trial(NOTEBOOK_PRIME, start, end, level, cancel).map_or(0, |f| f.map_or(0, |f| f as u64))
}

fn count(level: Level, start: u64, end: u64, cancel: &Cancel) -> u64 {
    count_random(&Pattern::new('e', false), 7, start, end, level, cancel).unwrap_or(0)
}

/// (name, kernel, units per iteration, first unit).
fn kernels() -> [(&'static str, Kernel, u64, u64); 3] {
    [
        ("pi-samples", pi, SAMPLES, 0),
        // Candidates near the top of the notebook number's range, where a full scan spends
        // its time; units are integers, of which the 30-wheel tests 8 in 30.
        (
            "prime-trial-integers",
            prime,
            trial_units(NOTEBOOK_PRIME) / 8,
            trial_units(NOTEBOOK_PRIME) / 2,
        ),
        ("count-random-letters", count, SAMPLES * 4, 0),
    ]
}

fn per_level(c: &mut Criterion) {
    for (name, kernel, units, first) in kernels() {
        let mut group = c.benchmark_group(format!("{name}/one-core"));
        group.throughput(Throughput::Elements(units));
        group.sample_size(10);
        for level in Level::available() {
            group.bench_function(level.name(), |b| {
                let cancel = Cancel::default();
                b.iter(|| kernel(level, black_box(first), first + units, &cancel))
            });
        }
        group.finish();
    }
}

fn all_cores(c: &mut Criterion) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    for (name, kernel, units, first) in kernels() {
        let mut group = c.benchmark_group(format!("{name}/all-cores"));
        group.throughput(Throughput::Elements(units * cores));
        group.sample_size(10);
        group.bench_function(format!("{}x{}", cores, Level::detect().name()), |b| {
            let cancel = Cancel::default();
            b.iter(|| {
                std::thread::scope(|s| {
                    let handles: Vec<_> = (0..cores)
                        .map(|i| {
                            let (cancel, start) = (&cancel, first + i * units);
                            s.spawn(move || kernel(Level::detect(), start, start + units, cancel))
                        })
                        .collect();
                    handles.into_iter().filter_map(|h| h.join().ok()).count()
                })
            })
        });
        group.finish();
    }
}

fn freefall(c: &mut Criterion) {
    use marmotd::kernels::freefall::{drag_heights, vacuum_heights, vacuum_points};
    use proto::job::Fall;
    let vacuum = Fall::default();
    let points = vacuum_points(&vacuum).unwrap_or(1);
    let drag = Fall { drag: 1e-4, ..vacuum };
    let mut group = c.benchmark_group("freefall-points/one-core");
    group.throughput(Throughput::Elements(points));
    group.sample_size(10);
    let cancel = Cancel::default();
    group.bench_function("closed-form", |b| {
        b.iter(|| vacuum_heights(&vacuum, black_box(0), points, &cancel).map(|h| h.len()))
    });
    group.bench_function("rk4-drag", |b| {
        let start = (0, drag.y0, drag.v0);
        b.iter(|| drag_heights(&drag, start, black_box(0), points, &cancel).map(|h| h.len()))
    });
    group.finish();
}

criterion_group!(benches, per_level, all_cores, freefall);
criterion_main!(benches);
