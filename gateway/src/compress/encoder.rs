//! One response's encoder, fed frame by frame: each frame's output is
//! flushed at once (a sync flush), so a streamed response (SSE, tokens of
//! a model) reaches the client chunk by chunk, compressed, never held back
//! to fill a buffer.

use std::io::{self, Write};

use bytes::Bytes;
use flate2::write::GzEncoder;

use super::Coding;

/// brotli's window: 512 KiB, ngx_brotli's `brotli_window` default, which
/// bounds the memory one response's encoder holds.
const BROTLI_WINDOW_BITS: u32 = 19;
/// brotli's internal buffer.
const BROTLI_BUFFER: usize = 4096;

/// A response body's encoder.
pub(crate) enum Encoder {
    /// `gzip`.
    Gzip(GzEncoder<Vec<u8>>),
    /// `br`.
    Brotli(Box<brotli::CompressorWriter<Vec<u8>>>),
    /// Finished: nothing more is accepted.
    Done,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Gzip(_) => "Encoder::Gzip",
            Self::Brotli(_) => "Encoder::Brotli",
            Self::Done => "Encoder::Done",
        })
    }
}

impl Encoder {
    /// A new encoder for `coding` at `level` (gzip 1-9, brotli 0-11).
    pub(crate) fn new(coding: Coding, level: u32) -> Self {
        match coding {
            Coding::Gzip => Self::Gzip(GzEncoder::new(
                Vec::new(),
                flate2::Compression::new(level.min(9)),
            )),
            Coding::Brotli => Self::Brotli(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                BROTLI_BUFFER,
                level.min(11),
                BROTLI_WINDOW_BITS,
            ))),
        }
    }

    /// Compresses `data` and flushes: what can be sent now.
    pub(crate) fn encode(&mut self, data: &[u8]) -> io::Result<Bytes> {
        match self {
            Self::Gzip(encoder) => {
                encoder.write_all(data)?;
                encoder.flush()?;
                Ok(std::mem::take(encoder.get_mut()).into())
            }
            Self::Brotli(encoder) => {
                encoder.write_all(data)?;
                encoder.flush()?;
                Ok(std::mem::take(encoder.get_mut()).into())
            }
            Self::Done => Err(io::Error::other("encoder already finished")),
        }
    }

    /// Ends the stream: the last bytes (gzip's trailer, brotli's last
    /// block).
    pub(crate) fn finish(&mut self) -> io::Result<Bytes> {
        match std::mem::replace(self, Self::Done) {
            Self::Gzip(encoder) => encoder.finish().map(Bytes::from),
            Self::Brotli(encoder) => Ok(Bytes::from(encoder.into_inner())),
            Self::Done => Ok(Bytes::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn roundtrip(coding: Coding, chunks: &[&[u8]]) -> (Vec<Bytes>, Vec<u8>) {
        let mut encoder = Encoder::new(coding, 5);
        let mut parts: Vec<Bytes> = chunks.iter().map(|c| encoder.encode(c).unwrap()).collect();
        parts.push(encoder.finish().unwrap());
        let all: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
        let mut plain = Vec::new();
        match coding {
            Coding::Gzip => {
                flate2::read::GzDecoder::new(&all[..])
                    .read_to_end(&mut plain)
                    .unwrap();
            }
            Coding::Brotli => {
                brotli::Decompressor::new(&all[..], 4096)
                    .read_to_end(&mut plain)
                    .unwrap();
            }
        }
        (parts, plain)
    }

    #[test]
    fn each_chunk_is_decodable_as_it_arrives() {
        for coding in [Coding::Gzip, Coding::Brotli] {
            let chunks: [&[u8]; 3] = [b"data: one\n\n", b"data: two\n\n", b"data: three\n\n"];
            let (parts, plain) = roundtrip(coding, &chunks);
            assert_eq!(plain, chunks.concat(), "{coding:?}");
            // Every chunk produced output at once (flushed, not held).
            assert!(parts[..3].iter().all(|p| !p.is_empty()), "{coding:?}");
            // The first chunk alone decodes to the first event.
            let mut first = Vec::new();
            let prefix = parts[0].clone();
            match coding {
                Coding::Gzip => {
                    let mut decoder = flate2::write::GzDecoder::new(Vec::new());
                    std::io::Write::write_all(&mut decoder, &prefix).unwrap();
                    std::io::Write::flush(&mut decoder).unwrap();
                    first = decoder.get_ref().clone();
                }
                Coding::Brotli => {
                    let mut decoder = brotli::DecompressorWriter::new(Vec::new(), 4096);
                    std::io::Write::write_all(&mut decoder, &prefix).unwrap();
                    std::io::Write::flush(&mut decoder).unwrap();
                    first.extend_from_slice(decoder.get_ref());
                }
            }
            assert_eq!(first, b"data: one\n\n", "{coding:?}");
        }
    }

    #[test]
    fn a_finished_encoder_refuses_more() {
        let mut encoder = Encoder::new(Coding::Gzip, 1);
        encoder.finish().unwrap();
        assert!(encoder.encode(b"x").is_err());
        assert!(encoder.finish().unwrap().is_empty());
    }
}
