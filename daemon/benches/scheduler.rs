//! Scheduler throughput: chunk events per second through the sans-IO state machine alone.
//!
//! 16 workers × 4 slots run a job of 100,000 one-unit chunks; every result fed back frees a
//! slot and makes the scheduler reduce it and assign the next chunk. A second case runs four
//! jobs at once, so the round-robin between jobs is on the path too.
//!
//! `cargo bench -p marmotd --bench scheduler`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use marmotd::scheduler::{Action, Config, Event, Homes, JobShape, Scheduler};
use std::time::Duration;

const CHUNKS: u64 = 100_000;

fn setup(jobs: u64) -> (Scheduler<u64>, Vec<u64>) {
    let mut s = Scheduler::new(Config::default());
    let mut running = vec![];
    for worker in 0..16 {
        s.handle(
            Duration::ZERO,
            Event::WorkerJoined {
                worker,
                member: worker.to_string(),
                slots: 4,
                quarantined: false,
                exec: true,
            },
        );
    }
    for job in 0..jobs {
        // One unit a second and chunks of at most 0.5 s: one unit per chunk.
        let shape = JobShape::new(CHUNKS / jobs, 1.0);
        let event = Event::JobSubmitted { job, shape, homes: Homes::none() };
        running.extend(assignments(s.handle(Duration::ZERO, event)));
    }
    (s, running)
}

fn assignments(actions: Vec<Action<u64>>) -> impl Iterator<Item = u64> {
    actions.into_iter().filter_map(|a| match a {
        Action::Assign { assignment, .. } => Some(assignment),
        _ => None,
    })
}

/// Feeds results back, oldest assignment first, until every chunk is done; returns the
/// events fed.
fn drain(mut s: Scheduler<u64>, running: Vec<u64>) -> u64 {
    let mut running = std::collections::VecDeque::from(running);
    let mut events = 0;
    let mut now = Duration::ZERO;
    while let Some(assignment) = running.pop_front() {
        now += Duration::from_micros(10);
        events += 1;
        running.extend(assignments(s.handle(now, Event::ChunkFinished { assignment, result: 1 })));
    }
    events
}

fn throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("scheduler");
    group.throughput(Throughput::Elements(CHUNKS));
    group.sample_size(10);
    for jobs in [1, 4] {
        group.bench_function(format!("chunk-events/{jobs}-jobs"), |b| {
            b.iter_batched(
                || setup(jobs),
                |(s, r)| assert_eq!(drain(s, r), CHUNKS),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, throughput);
criterion_main!(benches);
