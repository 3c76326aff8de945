//! Congestion control that suits both a LAN and the internet: Cubic near, BBR far.
//!
//! BBR paces to the measured bandwidth and round trip instead of halving its window at every
//! lost packet, so over a lossy, far link (a hotspot, a friend's house) a binary moves at a
//! share of the link, not at the trickle Cubic allows at 1% loss and 100 ms. On loopback
//! and a LAN, where the round trip is a fraction of a millisecond, quinn's BBR keeps a window
//! of a few round trips' worth of a bandwidth it estimates low, and an update of four workers
//! took much longer than with Cubic (`tests/bench/wan.sh BIN 3 lan`; figures in the README).
//!
//! So both run, fed the same events, and the window is Cubic's while the connection's
//! smallest round trip is under [`FAR`], BBR's from then on. The smallest round trip only
//! grows when the path changes (a worker that moved), so a connection settles on one.

use quinn::congestion::{Bbr, BbrConfig, Controller, ControllerFactory, Cubic, CubicConfig};
use quinn_proto::RttEstimator;
use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The smallest round trip from which a link is far: more than any LAN's (Wi-Fi included),
/// less than a link across a city.
pub const FAR: Duration = Duration::from_millis(10);

/// Builds [`NearOrFar`] controllers.
#[derive(Debug, Default)]
pub struct NearOrFarConfig {
    cubic: Arc<CubicConfig>,
    bbr: Arc<BbrConfig>,
}

impl ControllerFactory for NearOrFarConfig {
    fn build(self: Arc<Self>, now: Instant, current_mtu: u16) -> Box<dyn Controller> {
        Box::new(NearOrFar {
            near: Box::new(Cubic::new(self.cubic.clone(), now, current_mtu)),
            far: Box::new(Bbr::new(self.bbr.clone(), current_mtu)),
            min_rtt: None,
        })
    }
}

/// Cubic and BBR side by side; the window of the one that suits the link's round trip.
pub struct NearOrFar {
    near: Box<dyn Controller>,
    far: Box<dyn Controller>,
    /// The smallest round trip measured, once one is.
    min_rtt: Option<Duration>,
}

impl NearOrFar {
    fn is_far(&self) -> bool {
        self.min_rtt.is_some_and(|rtt| rtt >= FAR)
    }

    fn chosen(&self) -> &dyn Controller {
        if self.is_far() {
            &*self.far
        } else {
            &*self.near
        }
    }

    fn both(&mut self, mut event: impl FnMut(&mut dyn Controller)) {
        event(&mut *self.near);
        event(&mut *self.far);
    }
}

impl Controller for NearOrFar {
    fn on_sent(&mut self, now: Instant, bytes: u64, last_packet_number: u64) {
        self.both(|c| c.on_sent(now, bytes, last_packet_number));
    }

    fn on_ack(
        &mut self,
        now: Instant,
        sent: Instant,
        bytes: u64,
        limited: bool,
        rtt: &RttEstimator,
    ) {
        self.min_rtt = Some(rtt.min());
        self.both(|c| c.on_ack(now, sent, bytes, limited, rtt));
    }

    fn on_end_acks(&mut self, now: Instant, in_flight: u64, limited: bool, largest: Option<u64>) {
        self.both(|c| c.on_end_acks(now, in_flight, limited, largest));
    }

    fn on_congestion_event(&mut self, now: Instant, sent: Instant, persistent: bool, lost: u64) {
        self.both(|c| c.on_congestion_event(now, sent, persistent, lost));
    }

    fn on_mtu_update(&mut self, new_mtu: u16) {
        self.both(|c| c.on_mtu_update(new_mtu));
    }

    fn window(&self) -> u64 {
        self.chosen().window()
    }

    fn metrics(&self) -> quinn::congestion::ControllerMetrics {
        self.chosen().metrics()
    }

    fn clone_box(&self) -> Box<dyn Controller> {
        Box::new(NearOrFar {
            near: self.near.clone_box(),
            far: self.far.clone_box(),
            min_rtt: self.min_rtt,
        })
    }

    fn initial_window(&self) -> u64 {
        self.chosen().initial_window()
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_cubics_near_and_bbrs_far() {
        let start = Instant::now();
        let c = Arc::new(NearOrFarConfig::default()).build(start, 1200);
        let mut c = c.into_any().downcast::<NearOrFar>().unwrap();
        assert_eq!(c.window(), c.near.window(), "Cubic's until a round trip is measured");
        // A loss reaches both: Cubic halves its window, BBR keeps its own.
        c.on_sent(start, 12_000, 10);
        c.on_congestion_event(start, start, false, 1200);
        assert!(c.near.window() < c.far.window());
        for (rtt, far) in [(200, false), (9_999, false), (10_000, true), (50_000, true)] {
            c.min_rtt = Some(Duration::from_micros(rtt));
            assert_eq!(c.is_far(), far, "{rtt} µs");
            let chosen = if far { c.far.window() } else { c.near.window() };
            assert_eq!(c.window(), chosen, "{rtt} µs");
            assert_eq!(
                c.initial_window(),
                if far { c.far.initial_window() } else { c.near.initial_window() }
            );
            // A copy keeps the choice and both states.
            let copy = c.clone_box().into_any().downcast::<NearOrFar>().unwrap();
            assert_eq!((copy.window(), copy.near.window()), (c.window(), c.near.window()));
        }
    }
}
