//! Bytes in pieces: every transfer of a file's bytes (a chunk's input, a command's files and
//! its units' output, a binary on its way to an update, an upload to the control API) goes a
//! piece of [`PIECE`] bytes at a time, so memory stays at one piece whatever the size.
//!
//! - [`FilePieces`]: bytes `start..start + len` of a file, read a piece at a time. Starting
//!   at an offset is what makes a cut transfer resumable: the receiver says what it kept.
//! - [`send_file`] / [`send_bytes`]: those pieces as messages on a framed stream, each wrapped
//!   as the stream's protocol wants it ([`ChunkData`] alone, or inside a command's message).
//! - [`Incoming`]: the receiving side, exactly the bytes announced: fewer is a cut transfer,
//!   more is refused.

use crate::framed::{MessageReader, MessageWriter};
use crate::wire::{ChunkData, CmdMessage};
use crate::FrameError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt, AsyncWrite};

/// Bytes per piece (well under the frame limit).
pub const PIECE: usize = 1 << 20;

/// Why pieces could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The file could not be read, or was shorter than announced (it changed while sent).
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    /// The stream broke.
    #[error(transparent)]
    Send(#[from] FrameError),
}

/// Why pieces could not be received.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    /// The sender ended the stream before the announced bytes were all in.
    #[error("the sender ended the transfer after {received} of {size} bytes")]
    Ended { received: u64, size: u64 },
    /// The stream broke before the announced bytes were all in.
    #[error("the transfer was cut after {received} of {size} bytes")]
    Cut { received: u64, size: u64 },
    /// The sender sent more than it announced.
    #[error("more bytes than the {size} announced")]
    TooMuch { size: u64 },
    /// The sender sent another message where a piece belongs.
    #[error("a message other than a piece in the middle of a transfer")]
    NotAPiece,
}

/// Bytes `start..start + len` of a file, a piece at a time.
pub struct FilePieces {
    file: tokio::fs::File,
    path: PathBuf,
    left: u64,
}

impl FilePieces {
    /// Opens `path` at `start`, for `len` bytes.
    pub async fn open(path: &Path, start: u64, len: u64) -> std::io::Result<Self> {
        let mut file = tokio::fs::File::open(path).await?;
        file.seek(std::io::SeekFrom::Start(start)).await?;
        Ok(FilePieces { file, path: path.to_path_buf(), left: len })
    }

    /// The next piece, `None` after the last. A file shorter than announced is an error.
    pub async fn next(&mut self) -> Result<Option<Vec<u8>>, SendError> {
        if self.left == 0 {
            return Ok(None);
        }
        let want = self.left.min(PIECE as u64) as usize;
        let mut piece = vec![0u8; want];
        self.file
            .read_exact(&mut piece)
            .await
            .map_err(|source| SendError::Read { path: self.path.clone(), source })?;
        self.left -= want as u64;
        Ok(Some(piece))
    }
}

/// A message that carries a piece on its stream.
pub trait Piece: Serialize + DeserializeOwned {
    fn wrap(piece: ChunkData) -> Self;
    /// The piece's bytes, `None` for any other message.
    fn bytes(self) -> Option<Vec<u8>>;
}

impl Piece for ChunkData {
    fn wrap(piece: ChunkData) -> Self {
        piece
    }

    fn bytes(self) -> Option<Vec<u8>> {
        Some(self.bytes)
    }
}

impl Piece for CmdMessage {
    fn wrap(piece: ChunkData) -> Self {
        CmdMessage::Data(piece)
    }

    fn bytes(self) -> Option<Vec<u8>> {
        match self {
            CmdMessage::Data(piece) => Some(piece.bytes),
            _ => None,
        }
    }
}

/// Sends bytes `start..start + len` of the file at `path` as pieces of kind `M`.
pub async fn send_file<M: Piece, W: AsyncWrite + Unpin>(
    writer: &mut MessageWriter<W>,
    path: &Path,
    start: u64,
    len: u64,
) -> Result<(), SendError> {
    if len == 0 {
        return Ok(());
    }
    let mut pieces = FilePieces::open(path, start, len)
        .await
        .map_err(|source| SendError::Read { path: path.to_path_buf(), source })?;
    while let Some(bytes) = pieces.next().await? {
        writer.send(&M::wrap(ChunkData { bytes })).await?;
    }
    Ok(())
}

/// Sends `bytes` as pieces of kind `M`.
pub async fn send_bytes<M: Piece, W: AsyncWrite + Unpin>(
    writer: &mut MessageWriter<W>,
    bytes: &[u8],
) -> Result<(), FrameError> {
    for piece in bytes.chunks(PIECE) {
        writer.send(&M::wrap(ChunkData { bytes: piece.to_vec() })).await?;
    }
    Ok(())
}

/// Receives exactly `size` bytes of pieces of kind `M`, after `from` already kept (a resumed
/// transfer): [`Incoming::next`] hands each piece on as it comes.
pub struct Incoming<'a, R, M> {
    reader: &'a mut MessageReader<R>,
    received: u64,
    size: u64,
    kind: std::marker::PhantomData<M>,
}

impl<'a, R: AsyncRead + Unpin, M: Piece> Incoming<'a, R, M> {
    pub fn new(reader: &'a mut MessageReader<R>, from: u64, size: u64) -> Self {
        Incoming { reader, received: from, size, kind: std::marker::PhantomData }
    }

    /// Bytes in so far, counting those kept before.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The next piece, `None` once every byte is in.
    pub async fn next(&mut self) -> Result<Option<Vec<u8>>, ReceiveError> {
        if self.received >= self.size {
            return Ok(None);
        }
        let (received, size) = (self.received, self.size);
        let message = match self.reader.recv::<M>().await {
            Ok(Some(message)) => message,
            Ok(None) => return Err(ReceiveError::Ended { received, size }),
            Err(_) => return Err(ReceiveError::Cut { received, size }),
        };
        let bytes = message.bytes().ok_or(ReceiveError::NotAPiece)?;
        if bytes.len() as u64 > self.size - self.received {
            return Err(ReceiveError::TooMuch { size: self.size });
        }
        self.received += bytes.len() as u64;
        Ok(Some(bytes))
    }

    /// Every byte is in: the sender must now end the stream (no more pieces).
    pub async fn end(self) -> Result<(), ReceiveError> {
        match self.reader.recv::<M>().await {
            Ok(None) => Ok(()),
            Ok(Some(_)) => Err(ReceiveError::TooMuch { size: self.size }),
            Err(_) => Err(ReceiveError::Cut { received: self.received, size: self.size }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer and a reader joined by an in-memory pipe.
    fn pipe() -> (MessageWriter<tokio::io::DuplexStream>, MessageReader<tokio::io::DuplexStream>) {
        let (a, b) = tokio::io::duplex(4 * PIECE);
        (MessageWriter::new(a), MessageReader::new(b))
    }

    #[tokio::test]
    async fn a_file_goes_in_pieces_from_an_offset_and_arrives_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let bytes: Vec<u8> = (0..PIECE * 2 + 10).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let (mut writer, mut reader) = pipe();
        let from = 7u64;
        let size = bytes.len() as u64;
        let sending = async {
            send_file::<CmdMessage, _>(&mut writer, &path, from, size - from).await.unwrap();
            drop(writer);
        };
        let receiving = async {
            let mut incoming = Incoming::<_, CmdMessage>::new(&mut reader, from, size);
            let (mut got, mut lens) = (vec![], vec![]);
            while let Some(piece) = incoming.next().await.unwrap() {
                lens.push(piece.len());
                got.extend(piece);
            }
            assert_eq!(incoming.received(), size);
            incoming.end().await.unwrap();
            (got, lens)
        };
        let ((), (got, lens)) = tokio::join!(sending, receiving);
        assert_eq!(got, bytes[from as usize..], "the bytes after those kept");
        assert_eq!(lens, [PIECE, PIECE, 3], "whole pieces, then the rest");
    }

    #[tokio::test]
    async fn fewer_bytes_are_a_cut_and_more_are_refused() {
        let (mut writer, mut reader) = pipe();
        send_bytes::<ChunkData, _>(&mut writer, b"12345").await.unwrap();
        drop(writer);
        let mut incoming = Incoming::<_, ChunkData>::new(&mut reader, 0, 9);
        assert_eq!(incoming.next().await.unwrap().unwrap(), b"12345");
        let e = incoming.next().await.unwrap_err();
        assert!(matches!(e, ReceiveError::Ended { received: 5, size: 9 }), "{e}");

        let (mut writer, mut reader) = pipe();
        send_bytes::<ChunkData, _>(&mut writer, b"12345").await.unwrap();
        let mut incoming = Incoming::<_, ChunkData>::new(&mut reader, 0, 4);
        let e = incoming.next().await.unwrap_err();
        assert!(matches!(e, ReceiveError::TooMuch { size: 4 }), "{e}");

        // More than is left after some came: refused too.
        let (mut writer, mut reader) = pipe();
        send_bytes::<ChunkData, _>(&mut writer, b"12").await.unwrap();
        send_bytes::<ChunkData, _>(&mut writer, b"345").await.unwrap();
        let mut incoming = Incoming::<_, ChunkData>::new(&mut reader, 0, 4);
        assert_eq!(incoming.next().await.unwrap().unwrap(), b"12");
        let e = incoming.next().await.unwrap_err();
        assert!(matches!(e, ReceiveError::TooMuch { size: 4 }), "{e}");

        let (mut writer, mut reader) = pipe();
        send_bytes::<ChunkData, _>(&mut writer, b"1234").await.unwrap();
        send_bytes::<ChunkData, _>(&mut writer, b"5").await.unwrap();
        let mut incoming = Incoming::<_, ChunkData>::new(&mut reader, 0, 4);
        assert_eq!(incoming.next().await.unwrap().unwrap(), b"1234");
        assert!(incoming.next().await.unwrap().is_none(), "all in");
        let e = incoming.end().await.unwrap_err();
        assert!(matches!(e, ReceiveError::TooMuch { size: 4 }), "a piece after the last");
    }

    #[tokio::test]
    async fn another_message_is_not_a_piece_and_a_short_file_is_an_error() {
        let (mut writer, mut reader) = pipe();
        writer.send(&CmdMessage::Done).await.unwrap();
        let mut incoming = Incoming::<_, CmdMessage>::new(&mut reader, 0, 4);
        assert!(matches!(incoming.next().await, Err(ReceiveError::NotAPiece)));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("short");
        std::fs::write(&path, b"abc").unwrap();
        let (mut writer, _reader) = pipe();
        let e = send_file::<ChunkData, _>(&mut writer, &path, 1, 5).await.unwrap_err();
        assert!(matches!(e, SendError::Read { .. }), "{e}");
        assert!(e.to_string().starts_with("cannot read "), "{e}");
        send_file::<ChunkData, _>(&mut writer, &dir.path().join("none"), 0, 0).await.unwrap();
    }
}
