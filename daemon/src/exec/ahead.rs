//! Input files sent ahead of their units, both ends of the exchange
//! ([`CoordinatorOpen::SendAhead`]): while a worker's slot runs a unit, the coordinator sends
//! the file of the unit that slot will take next, so that unit starts at once instead of
//! waiting for its file after the one before ends.
//!
//! The scheduler decides which unit that is and gives it to that worker (its file is there
//! then: `scheduler/fresh.rs`). On the worker, a chunk that needs a file still arriving ahead
//! waits for it rather than asking for it again ([`super::arrivals`]).

use super::cache::FileCache;
use super::units::{fetch, Stop, Units};
use crate::transport::codes;
use anyhow::{bail, Context, Result};
use proto::command::FileRef;
use proto::pieces;
use proto::wire::{ChunkData, CmdMessage, CoordinatorOpen, MAX_SENT_AHEAD};
use proto::{MessageReader, MessageWriter};
use std::collections::HashMap;
use std::time::Duration;

/// How long the coordinator waits for the worker to close its side once it sent the files.
const WAIT_FOR_WORKER: Duration = Duration::from_secs(60);

/// The coordinator's end: sends `files` from `store` to the worker on `conn`, those it lacks.
pub async fn send(conn: &quinn::Connection, files: Vec<FileRef>, store: &FileCache) -> Result<()> {
    let (send, recv) = conn.open_bi().await?;
    let (mut writer, mut reader) = (MessageWriter::new(send), MessageReader::new(recv));
    let sizes: HashMap<String, u64> = files.iter().map(|f| (f.sha256.clone(), f.size)).collect();
    writer.send(&CoordinatorOpen::SendAhead(files)).await?;
    let need = match reader.recv::<CmdMessage>().await? {
        Some(CmdMessage::Need(need)) => need,
        Some(_) => bail!("the worker answered files sent ahead with something else"),
        None => bail!("the worker closed the stream of files sent ahead"),
    };
    if need.len() > sizes.len() {
        bail!("the worker asked for {} files of the {} sent ahead", need.len(), sizes.len());
    }
    for sha in &need {
        let size = *sizes.get(sha).context("the worker asked for a file not sent ahead")?;
        // Pushed out of the store since: the unit's own chunk says so, if it still runs.
        let Some(path) = store.path(sha) else { return Ok(()) };
        pieces::send_file::<ChunkData, _>(&mut writer, &path, 0, size).await?;
    }
    let _ = writer.get_mut().finish();
    // The worker closes its side once it has them all.
    let _ = tokio::time::timeout(WAIT_FOR_WORKER, reader.recv::<CmdMessage>()).await;
    Ok(())
}

/// The worker's end: asks for those of `files` its cache lacks (and that are not arriving
/// already) and takes them in.
pub async fn receive(
    files: Vec<FileRef>,
    reader: &mut MessageReader<quinn::RecvStream>,
    writer: &mut MessageWriter<quinn::SendStream>,
    units: &Units,
) {
    let checked = files.iter().try_for_each(FileRef::check);
    if files.len() > MAX_SENT_AHEAD || checked.is_err() {
        let _ = writer.get_mut().reset(codes::PROTOCOL);
        return;
    }
    if !units.exec {
        let _ = writer.get_mut().reset(codes::REFUSED);
        return;
    }
    let mut arriving = vec![];
    for file in files {
        if units.cache.has(&file.sha256) {
            continue;
        }
        if let Some(arrival) = units.ahead.start(&file.sha256) {
            arriving.push((file, arrival));
        }
    }
    let need = arriving.iter().map(|(file, _)| file.sha256.clone()).collect();
    if writer.send(&CmdMessage::Need(need)).await.is_err() {
        return;
    }
    for (file, _arrival) in &arriving {
        match fetch(file, 0, reader, &units.cache).await {
            Ok(()) => {}
            Err(Stop::Failed(why)) => {
                tracing::debug!("a file sent ahead did not arrive: {why}");
                return;
            }
            Err(_) => return,
        }
    }
    let _ = writer.get_mut().finish();
}
