//! Following a job through a coordinator restart: a request that finds no coordinator (it is
//! restarting after `update --coordinator`, a crash, a reboot) is tried again with backoff,
//! 0.2 s growing to 5 s, until the coordinator is back, which resumes the job from its journal.
//! Only errors in the coordinator's own words, or an outage past [`GIVE_UP_AFTER`], end it.

use crate::ClientError;
use backon::BackoffBuilder;
use std::time::{Duration, Instant};

/// How long a coordinator may stay unreachable before following gives up.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(600);

/// The retries of one follower.
pub struct Reconnect {
    backoff: Box<dyn Iterator<Item = Duration> + Send>,
    /// When the current outage began.
    down_since: Option<Instant>,
    give_up_after: Duration,
}

/// What to do with a request's result.
pub enum Next<T> {
    /// It answered.
    Answer(T),
    /// No coordinator: the wait is over, ask again.
    Again,
}

impl Default for Reconnect {
    fn default() -> Self {
        Self::new(GIVE_UP_AFTER)
    }
}

impl Reconnect {
    pub fn new(give_up_after: Duration) -> Self {
        Reconnect { backoff: fresh_backoff(), down_since: None, give_up_after }
    }

    /// Passes an answer through; for a transient error, calls `waiting` with it and the wait,
    /// waits, and says to ask again. Other errors, and an outage too long, are returned.
    pub async fn after<T>(
        &mut self,
        result: Result<T, ClientError>,
        waiting: impl FnOnce(&ClientError, Duration),
    ) -> Result<Next<T>, ClientError> {
        match result {
            Ok(answer) => {
                if self.down_since.take().is_some() {
                    self.backoff = fresh_backoff();
                }
                Ok(Next::Answer(answer))
            }
            Err(e) if e.is_transient() => {
                let since = *self.down_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= self.give_up_after {
                    return Err(e);
                }
                let wait = self.backoff.next().unwrap_or(Duration::from_secs(5));
                waiting(&e, wait);
                tokio::time::sleep(wait).await;
                Ok(Next::Again)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether the coordinator is unreachable now.
    pub fn is_down(&self) -> bool {
        self.down_since.is_some()
    }
}

fn fresh_backoff() -> Box<dyn Iterator<Item = Duration> + Send> {
    Box::new(
        backon::ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(5))
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gone() -> ClientError {
        ClientError::NoCoordinator("/run/marmot/marmotd.sock".into())
    }

    #[tokio::test(start_paused = true)]
    async fn transient_errors_are_waited_out_until_the_limit() {
        let mut reconnect = Reconnect::new(Duration::from_secs(10));
        let mut waits = vec![];
        for _ in 0..3 {
            let next = reconnect.after(Err::<(), _>(gone()), |_, wait| waits.push(wait)).await;
            assert!(matches!(next, Ok(Next::Again)));
        }
        assert!(reconnect.is_down());
        assert!(waits.windows(2).all(|w| w[0] <= w[1] * 2), "backoff grows: {waits:?}");
        assert!(waits[0] >= Duration::from_millis(200) && waits[0] < Duration::from_millis(500));
        let answer = reconnect.after(Ok::<_, ClientError>(7), |_, _| panic!("no wait")).await;
        assert!(matches!(answer, Ok(Next::Answer(7))));
        assert!(!reconnect.is_down());
        // Refusals in the coordinator's words are final.
        let refused = ClientError::Refused { status: 404, message: "no job 9".into() };
        let e = reconnect.after(Err::<(), _>(refused), |_, _| panic!("no wait")).await;
        assert!(matches!(e, Err(ClientError::Refused { status: 404, .. })));
        // An outage longer than the limit ends the following.
        loop {
            match reconnect.after(Err::<(), _>(gone()), |_, _| {}).await {
                Ok(Next::Again) => continue,
                Ok(Next::Answer(())) => unreachable!(),
                Err(e) => break assert!(matches!(e, ClientError::NoCoordinator(_))),
            }
        }
    }
}
