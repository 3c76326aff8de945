//! Following a job's answers to their end, through coordinator restarts ([`Reconnect`]): its
//! end ([`ended`]), a series job's chunks in order ([`SeriesChunks`]), and a command job's
//! output, delivery by delivery ([`take_output`]). The caller says what to do with each piece,
//! and how to say that the coordinator is out of reach ([`Lost`]: a progress bar's message, a
//! line on stderr, or nothing).

use crate::client::{Client, ClientError, OutputPiece, SeriesChunk};
use crate::reconnect::{Next, Reconnect};
use proto::api::JobView;
use proto::command::spool::{Event, SpoolError, SpoolReader};
use std::time::Duration;

/// How long each long poll waits for news, in milliseconds.
pub const POLL_MS: u64 = 1000;

/// Told when the coordinator is out of reach: the error, the wait before asking again, and
/// whether this outage was already told.
pub trait Lost: FnMut(&ClientError, Duration, bool) {}
impl<F: FnMut(&ClientError, Duration, bool)> Lost for F {}

/// Says nothing when the coordinator is out of reach.
pub fn quietly(_: &ClientError, _: Duration, _: bool) {}

/// Why following stopped before the end.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("delivery {n} of job {id} came back cut short")]
    Cut { id: u64, n: u64 },
    #[error(transparent)]
    Output(#[from] SpoolError),
}

/// Passes the coordinator's answer through, or waits out its absence (`None`: ask again).
async fn answer<T>(
    reconnect: &mut Reconnect,
    lost: &mut impl Lost,
    asked: Result<T, ClientError>,
) -> Result<Option<T>, ClientError> {
    let was_down = reconnect.is_down();
    match reconnect.after(asked, |e, wait| lost(e, wait, was_down)).await? {
        Next::Answer(answer) => Ok(Some(answer)),
        Next::Again => Ok(None),
    }
}

/// Waits for job `id` to end, and returns its view.
pub async fn ended(client: &Client, id: u64, mut lost: impl Lost) -> Result<JobView, ClientError> {
    let mut reconnect = Reconnect::default();
    loop {
        let asked = client.job(id, POLL_MS).await;
        if let Some(view) = answer(&mut reconnect, &mut lost, asked).await? {
            if view.state.is_finished() {
                return Ok(view);
            }
        }
    }
}

/// A series job's chunks, taken in order: [`SeriesChunks::next`] until `None`.
pub struct SeriesChunks<'a, L> {
    client: &'a Client,
    id: u64,
    /// The next chunk's index.
    next: u32,
    /// How many chunks there are, once one said.
    chunks: Option<u64>,
    reconnect: Reconnect,
    lost: L,
}

impl<'a, L: Lost> SeriesChunks<'a, L> {
    /// Takes series job `id`'s chunks from the first.
    pub fn new(client: &'a Client, id: u64, lost: L) -> Self {
        SeriesChunks { client, id, next: 0, chunks: None, reconnect: Reconnect::default(), lost }
    }

    /// The next chunk and its index, `None` after the last.
    pub async fn next(&mut self) -> Result<Option<(u32, SeriesChunk)>, ClientError> {
        if self.chunks.is_some_and(|n| u64::from(self.next) >= n) {
            return Ok(None);
        }
        loop {
            let asked = self.client.take_chunk(self.id, self.next, POLL_MS).await;
            let answered = answer(&mut self.reconnect, &mut self.lost, asked).await?;
            if let Some(Some(chunk)) = answered {
                let k = self.next;
                self.chunks = Some(chunk.chunks);
                self.next += 1;
                return Ok(Some((k, chunk)));
            }
        }
    }
}

/// Takes every delivery of command job `id`'s output in turn, piece by piece, handing what
/// the units printed to `event` as it comes (each unit's record whole, in delivery order).
pub async fn take_output(
    client: &Client,
    id: u64,
    mut event: impl FnMut(Event<'_>) -> std::io::Result<()>,
    mut lost: impl Lost,
) -> Result<(), FollowError> {
    let mut reconnect = Reconnect::default();
    let (mut n, mut offset) = (0u64, 0u64);
    let mut reader = SpoolReader::default();
    loop {
        let asked = client.take_output(id, n, offset, POLL_MS).await;
        let Some(piece) = answer(&mut reconnect, &mut lost, asked).await? else { continue };
        match piece {
            OutputPiece::End => return Ok(()),
            OutputPiece::NotYet => {}
            OutputPiece::Bytes { size, bytes } => {
                reader.feed(&bytes, &mut event)?;
                offset += bytes.len() as u64;
                if offset >= size {
                    if !reader.at_boundary() {
                        return Err(FollowError::Cut { id, n });
                    }
                    (n, offset) = (n + 1, 0);
                } else if bytes.is_empty() {
                    return Err(FollowError::Cut { id, n });
                }
            }
        }
    }
}
