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

#[cfg(test)]
mod tests {
    use super::*;
    use proto::command::spool;
    use proto::command::{UnitEnding, UnitReport};
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A reply of the fake coordinator: status, headers, body.
    type Reply = (u16, Vec<(&'static str, String)>, Vec<u8>);

    /// A fake coordinator on a Unix socket in `dir`: each request's path (with its query) is
    /// recorded, and answered by `answer`. Returns the socket's path and the paths asked.
    fn serve(
        dir: &std::path::Path,
        answer: impl Fn(&str) -> Reply + Send + Sync + 'static,
    ) -> (std::path::PathBuf, Arc<Mutex<Vec<String>>>) {
        let socket = dir.join("fake.sock");
        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        let asked = Arc::new(Mutex::new(vec![]));
        let (answer, log) = (Arc::new(answer), asked.clone());
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let (answer, log) = (answer.clone(), log.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    loop {
                        // One request head at a time (these requests have no body).
                        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                            let mut piece = [0u8; 4096];
                            match conn.read(&mut piece).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&piece[..n]),
                            }
                        }
                        let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                        let head = String::from_utf8_lossy(&buf[..end]).to_string();
                        buf.drain(..end);
                        let path = head.split(' ').nth(1).unwrap_or_default().to_string();
                        log.lock().unwrap().push(path.clone());
                        let (status, headers, body) = answer(&path);
                        let mut reply = format!("HTTP/1.1 {status} X\r\n");
                        for (name, value) in headers {
                            reply.push_str(&format!("{name}: {value}\r\n"));
                        }
                        reply.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
                        let mut bytes = reply.into_bytes();
                        bytes.extend(body);
                        if conn.write_all(&bytes).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (socket, asked)
    }

    fn unit(n: u64, out: &str) -> Vec<u8> {
        let report = UnitReport {
            unit: n,
            ending: UnitEnding::Exited(0),
            started_ms: 0,
            duration_ms: 1,
            stdout: out.len() as u64,
            stderr: 0,
            results: 0,
            worker: "w".into(),
        };
        let mut bytes = spool::header(&report).unwrap();
        bytes.extend_from_slice(out.as_bytes());
        bytes
    }

    fn path_of(id: u64, rest: &str) -> String {
        format!("{}{rest}", proto::api::routes::job(id))
    }

    #[tokio::test]
    async fn output_is_taken_delivery_by_delivery_in_pieces_until_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let first = [unit(0, "a\n"), unit(1, "bb\n")].concat();
        let second = unit(2, "c\n");
        let (d0, d1) = (first.clone(), second.clone());
        let split = 7;
        let (socket, asked) = serve(dir.path(), move |path| {
            let size = |d: &[u8]| vec![("marmot-output-size", d.len().to_string())];
            if path.starts_with(&path_of(1, "/output/0?offset=0&")) {
                (200, size(&d0), d0[..split].to_vec())
            } else if path.starts_with(&path_of(1, &format!("/output/0?offset={split}&"))) {
                (200, size(&d0), d0[split..].to_vec())
            } else if path.starts_with(&path_of(1, "/output/1?offset=0&")) {
                (200, size(&d1), d1.clone())
            } else {
                (204, vec![("marmot-output-end", "1".into())], vec![])
            }
        });
        let client = Client::new(socket);
        let mut seen = vec![];
        let event = |event: Event<'_>| {
            match event {
                Event::Unit(report) => seen.push(format!("unit {}", report.unit)),
                Event::Stdout(out) => seen.push(String::from_utf8_lossy(out).into_owned()),
                _ => {}
            }
            Ok(())
        };
        take_output(&client, 1, event, |_: &ClientError, _, _| panic!("no outage")).await.unwrap();
        assert_eq!(seen, ["unit 0", "a\n", "unit 1", "bb\n", "unit 2", "c\n"]);
        let asked = asked.lock().unwrap().clone();
        assert_eq!(asked.len(), 4, "two pieces, one whole delivery, the end: {asked:?}");
        assert!(asked[3].starts_with(&path_of(1, "/output/2?offset=0&")), "{asked:?}");
    }

    #[tokio::test]
    async fn a_delivery_that_ends_inside_a_unit_is_cut_short() {
        let dir = tempfile::tempdir().unwrap();
        let whole = unit(0, "abc\n");
        let cut = whole[..whole.len() - 2].to_vec();
        let (socket, _) = serve(dir.path(), move |_| {
            (200, vec![("marmot-output-size", cut.len().to_string())], cut.clone())
        });
        let client = Client::new(socket);
        let e = take_output(&client, 4, |_| Ok(()), quietly).await.unwrap_err();
        assert!(matches!(e, FollowError::Cut { id: 4, n: 0 }), "{e}");

        // A piece of nothing before the announced size is cut short too (never asked again).
        let dir = tempfile::tempdir().unwrap();
        let (socket, asked) =
            serve(dir.path(), move |_| (200, vec![("marmot-output-size", "10".into())], vec![]));
        let e = take_output(&Client::new(socket), 5, |_| Ok(()), quietly).await.unwrap_err();
        assert!(matches!(e, FollowError::Cut { id: 5, n: 0 }), "{e}");
        assert_eq!(asked.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_series_is_taken_in_order_once_each_and_no_further() {
        let dir = tempfile::tempdir().unwrap();
        let tries = Arc::new(Mutex::new(0));
        let seen = tries.clone();
        let (socket, asked) = serve(dir.path(), move |path| {
            let k: u32 = path.split("/chunks/").nth(1).unwrap()[..1].parse().unwrap();
            let mut tries = seen.lock().unwrap();
            *tries += 1;
            if *tries == 1 {
                return (204, vec![], vec![]); // not ready yet: asked again
            }
            let headers = vec![
                ("marmot-first-unit", (k * 2).to_string()),
                ("marmot-chunks", "2".into()),
                ("marmot-units", "4".into()),
            ];
            let values = [f64::from(k), f64::from(k) + 0.5];
            (200, headers, values.iter().flat_map(|v| v.to_le_bytes()).collect())
        });
        let client = Client::new(socket);
        let mut series = SeriesChunks::new(&client, 9, quietly);
        let mut got = vec![];
        while let Some((k, chunk)) = series.next().await.unwrap() {
            got.push((k, chunk.first_unit, chunk.values));
        }
        assert_eq!(got, [(0, 0, vec![0.0, 0.5]), (1, 2, vec![1.0, 1.5])]);
        assert!(series.next().await.unwrap().is_none(), "still the end");
        assert_eq!(asked.lock().unwrap().len(), 3, "chunk 0 twice, chunk 1 once, no chunk 2");
    }

    #[tokio::test]
    async fn a_job_is_followed_through_an_outage_to_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("fake.sock");
        let client = Client::new(socket.clone());
        let said = Arc::new(Mutex::new(vec![]));
        let told = said.clone();
        let lost = move |_: &ClientError, _, already: bool| told.lock().unwrap().push(already);
        let view = |state: &str| {
            serde_json::to_vec(&serde_json::json!({
                "id": 3, "task": "pi", "spec": {"pi": {"samples": 1, "seed": 0}},
                "state": state, "chunks_done": 0, "chunks_total": 1, "units_done": 0,
                "units_total": 1, "elapsed_seconds": 0.0, "chunks_rerun": 0, "result": null,
                "error": null
            }))
            .unwrap()
        };
        let following = tokio::spawn(async move { ended(&client, 3, lost).await });
        // No coordinator for a while: the follower waits, and says so.
        while said.lock().unwrap().len() < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let polls = Arc::new(Mutex::new(0));
        let (_, _) = serve(dir.path(), move |_| {
            let mut polls = polls.lock().unwrap();
            *polls += 1;
            let state = if *polls < 3 { "running" } else { "cancelled" };
            (200, vec![("content-type", "application/json".into())], view(state))
        });
        let ended = following.await.unwrap().unwrap();
        assert_eq!((ended.id, ended.state.is_finished()), (3, true));
        let said = said.lock().unwrap().clone();
        assert_eq!(said[..2], [false, true], "the first time as news, then as known");
    }
}
