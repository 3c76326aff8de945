//! Encoding and decoding single frames: a message's bincode bytes, bounded by [`MAX_FRAME`].
//!
//! This is the only module that knows the wire encoding is bincode, so swapping it touches one
//! file. Decoding never trusts a length inside the bytes: bincode is configured with the same
//! limit as the frame, so a hostile length field fails instead of allocating.

use bytes::Bytes;
use serde::{de::DeserializeOwned, Serialize};

/// The largest frame either side accepts, in bytes (the length prefix not included).
pub const MAX_FRAME: usize = 4 * 1024 * 1024;

type Config = bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<MAX_FRAME>,
>;

const CONFIG: Config = bincode::config::standard().with_limit::<MAX_FRAME>();

/// Why a frame could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {0} bytes is over the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    #[error("frame over this stream's {0}-byte limit")]
    OverLimit(usize),
    #[error("malformed frame: {0}")]
    Malformed(String),
    #[error("frame has {0} bytes left over after the message")]
    TrailingBytes(usize),
    #[error("could not encode message: {0}")]
    Encode(String),
    #[error("stream error: {0}")]
    Io(#[from] std::io::Error),
}

/// Encodes one message into a frame body.
pub fn encode<T: Serialize>(msg: &T) -> Result<Bytes, FrameError> {
    let bytes = bincode::serde::encode_to_vec(msg, CONFIG)
        .map_err(|e| FrameError::Encode(e.to_string()))?;
    if bytes.len() > MAX_FRAME {
        return Err(FrameError::TooLarge(bytes.len()));
    }
    Ok(Bytes::from(bytes))
}

/// Decodes one frame body into a message; the whole body must be the message.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    if body.len() > MAX_FRAME {
        return Err(FrameError::TooLarge(body.len()));
    }
    let (msg, used) = bincode::serde::decode_from_slice(body, CONFIG)
        .map_err(|e| FrameError::Malformed(e.to_string()))?;
    if used != body.len() {
        return Err(FrameError::TrailingBytes(body.len() - used));
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{ChunkData, ChunkOutput, ChunkTask};
    use crate::wire::{ChunkRequest, CoordinatorOpen, WorkerOpen};
    use proptest::prelude::*;

    #[test]
    fn round_trip() {
        let msg = CoordinatorOpen::Chunk(ChunkRequest {
            job: 7,
            chunk: 3,
            task: ChunkTask::Pi { samples: 10, seed: 1 },
            start: 5,
            end: 10,
        });
        let body = encode(&msg).unwrap();
        assert_eq!(decode::<CoordinatorOpen>(&body).unwrap(), msg);
    }

    #[test]
    fn truncated_frames_fail() {
        let body = encode(&ChunkOutput::Pi { inside: u64::MAX }).unwrap();
        for cut in 0..body.len() {
            assert!(decode::<ChunkOutput>(&body[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn trailing_bytes_fail() {
        let mut body = encode(&ChunkOutput::Pi { inside: 1 }).unwrap().to_vec();
        body.push(0);
        assert!(matches!(decode::<ChunkOutput>(&body), Err(FrameError::TrailingBytes(1))));
    }

    #[test]
    fn hostile_length_does_not_allocate() {
        // A Vec<u8> whose varint length claims 2^60 bytes: bincode must refuse it from the
        // limit, not try to allocate it.
        let mut body = vec![0u8]; // WorkerOpen::Join
        body.push(1); // protocol
        body.extend([0xFF, 0, 0, 0, 0, 0, 0, 0, 0x10]); // name length: u64 varint, huge
        assert!(decode::<WorkerOpen>(&body).is_err());
    }

    #[test]
    fn chunk_data_is_encoded_as_a_plain_byte_vector_was() {
        // Workers and coordinators of the previous release still talk to this one.
        #[derive(Serialize)]
        struct Before {
            bytes: Vec<u8>,
        }
        let bytes: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        let before = encode(&Before { bytes: bytes.clone() }).unwrap();
        assert_eq!(encode(&ChunkData { bytes: bytes.clone() }).unwrap(), before);
        assert_eq!(decode::<ChunkData>(&before).unwrap().bytes, bytes);
        // A length past the frame is refused before anything is allocated.
        let huge = [0xFF, 0, 0, 0, 0, 0, 0, 0, 0x10];
        assert!(decode::<ChunkData>(&huge).is_err());
    }

    #[test]
    fn oversized_body_fails() {
        let body = vec![0u8; MAX_FRAME + 1];
        assert!(matches!(decode::<WorkerOpen>(&body), Err(FrameError::TooLarge(_))));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode::<WorkerOpen>(&body);
            let _ = decode::<CoordinatorOpen>(&body);
            let _ = decode::<crate::wire::ChunkReply>(&body);
        }
    }
}
