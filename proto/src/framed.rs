//! Whole messages over an async byte stream: a 4-byte big-endian length, then a [`frame`] body.
//!
//! [`MessageReader`] and [`MessageWriter`] are the only code that touches a stream's bytes; the
//! daemon wraps the two halves of each QUIC stream in them. Both are generic over tokio's I/O
//! traits so tests can drive them through an in-memory pipe.
//!
//! [`frame`]: crate::frame

use crate::frame::{self, FrameError, MAX_FRAME};
use futures_util::{SinkExt, StreamExt};
use serde::{de::DeserializeOwned, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};

fn codec(max_frame: usize) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder().length_field_length(4).max_frame_length(max_frame).new_codec()
}

/// Reads messages from one stream.
pub struct MessageReader<R> {
    inner: FramedRead<R, LengthDelimitedCodec>,
}

impl<R: AsyncRead + Unpin> MessageReader<R> {
    pub fn new(io: R) -> Self {
        Self::with_max_frame(io, MAX_FRAME)
    }

    /// A reader that refuses frames over `max_frame` bytes (at most [`MAX_FRAME`]) before
    /// buffering them: for peers not trusted with more, e.g. before authentication.
    pub fn with_max_frame(io: R, max_frame: usize) -> Self {
        Self { inner: FramedRead::new(io, codec(max_frame.min(MAX_FRAME))) }
    }

    /// Changes the frame bound for the messages after this one (at most [`MAX_FRAME`]).
    pub fn set_max_frame(&mut self, max_frame: usize) {
        self.inner.decoder_mut().set_max_frame_length(max_frame.min(MAX_FRAME));
    }

    /// The next message; `Ok(None)` when the peer finished the stream cleanly between messages.
    ///
    /// Cancel-safe: a partly read frame stays buffered for the next call.
    pub async fn recv<T: DeserializeOwned>(&mut self) -> Result<Option<T>, FrameError> {
        match self.inner.next().await {
            None => Ok(None),
            Some(Err(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
                // tokio-util reports an over-long length prefix as InvalidData.
                Err(FrameError::OverLimit(self.inner.decoder().max_frame_length()))
            }
            Some(Err(e)) => Err(FrameError::Io(e)),
            Some(Ok(body)) => frame::decode(&body).map(Some),
        }
    }

    /// The underlying stream, e.g. to stop it.
    pub fn get_mut(&mut self) -> &mut R {
        self.inner.get_mut()
    }
}

/// Writes messages to one stream.
pub struct MessageWriter<W> {
    inner: FramedWrite<W, LengthDelimitedCodec>,
}

impl<W: AsyncWrite + Unpin> MessageWriter<W> {
    pub fn new(io: W) -> Self {
        Self { inner: FramedWrite::new(io, codec(MAX_FRAME)) }
    }

    /// Encodes and sends one message, flushing it to the stream.
    pub async fn send<T: Serialize>(&mut self, msg: &T) -> Result<(), FrameError> {
        let body = frame::encode(msg)?;
        self.inner.send(body).await.map_err(FrameError::Io)
    }

    /// The underlying stream, e.g. to finish or reset it.
    pub fn get_mut(&mut self) -> &mut W {
        self.inner.get_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ChunkOutput;
    use tokio::io::AsyncWriteExt;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    #[test]
    fn messages_cross_a_pipe() {
        rt().block_on(async {
            let (a, b) = tokio::io::duplex(64);
            let mut w = MessageWriter::new(a);
            let mut r = MessageReader::new(b);
            let send = async {
                for i in 0..100 {
                    w.send(&ChunkOutput::Pi { inside: i }).await.unwrap();
                }
                w.get_mut().shutdown().await.unwrap();
            };
            let recv = async {
                let mut got = vec![];
                while let Some(ChunkOutput::Pi { inside }) = r.recv().await.unwrap() {
                    got.push(inside);
                }
                got
            };
            let ((), got) = tokio::join!(send, recv);
            assert_eq!(got, (0..100).collect::<Vec<_>>());
        });
    }

    #[test]
    fn oversized_length_prefix_is_refused() {
        rt().block_on(async {
            let (mut a, b) = tokio::io::duplex(64);
            let mut r = MessageReader::new(b);
            a.write_all(&(u32::MAX).to_be_bytes()).await.unwrap();
            let err = r.recv::<ChunkOutput>().await.unwrap_err();
            assert!(matches!(err, FrameError::OverLimit(MAX_FRAME)), "{err}");
        });
    }

    #[test]
    fn a_smaller_bound_refuses_before_buffering_and_can_be_raised() {
        rt().block_on(async {
            let (a, b) = tokio::io::duplex(1 << 16);
            let mut w = MessageWriter::new(a);
            let mut r = MessageReader::with_max_frame(b, 64);
            // At the bound: read. Then the bound is raised for the next message.
            let fits = ChunkOutput::Series { values: vec![0.0; 6] };
            assert!(frame::encode(&fits).unwrap().len() <= 64);
            w.send(&fits).await.unwrap();
            assert_eq!(r.recv::<ChunkOutput>().await.unwrap(), Some(fits));
            let big = ChunkOutput::Series { values: vec![7.5; 100] };
            w.send(&big).await.unwrap();
            let err = r.recv::<ChunkOutput>().await.unwrap_err();
            assert!(matches!(err, FrameError::OverLimit(64)), "{err}");
            assert_eq!(err.to_string(), "frame over this stream's 64-byte limit");

            let (a, b) = tokio::io::duplex(1 << 16);
            let (mut w, mut r) = (MessageWriter::new(a), MessageReader::with_max_frame(b, 64));
            r.set_max_frame(usize::MAX); // capped at MAX_FRAME
            w.send(&big).await.unwrap();
            assert_eq!(r.recv::<ChunkOutput>().await.unwrap(), Some(big));
            assert_eq!(r.inner.decoder().max_frame_length(), MAX_FRAME);
        });
    }

    #[test]
    fn stream_cut_inside_a_frame_is_an_error() {
        rt().block_on(async {
            let (mut a, b) = tokio::io::duplex(64);
            let mut r = MessageReader::new(b);
            a.write_all(&10u32.to_be_bytes()).await.unwrap();
            a.write_all(&[1, 2, 3]).await.unwrap();
            drop(a);
            assert!(r.recv::<ChunkOutput>().await.is_err());
        });
    }
}
