//! End-to-end tests for marmot live in `tests/e2e/`: they start the real `marmotd` and
//! `marmotctl` binaries over real QUIC on 127.0.0.1. This library holds what they share with
//! the benchmark scripts: a WAN to put between workers and the coordinator.

pub mod wan;
