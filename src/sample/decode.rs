//! Bounded decoding of a sampled body prefix: gzip, deflate, br and zstd.
//!
//! Input is a prefix (often cut mid-stream), so decoders are read until they stop or fail and
//! whatever came out before is kept. Output never exceeds the limit.

use std::io::Read;

/// A `Content-Encoding` statuscope can decode for its sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// No encoding (absent or `identity`).
    Identity,
    /// `gzip` or `x-gzip`.
    Gzip,
    /// `deflate`: zlib-wrapped as RFC 9110 says, or raw deflate as some servers send.
    Deflate,
    /// `br`.
    Brotli,
    /// `zstd`.
    Zstd,
}

impl Encoding {
    /// Parses a `Content-Encoding` value; `None` for anything else, including stacked codings.
    pub fn parse(value: Option<&str>) -> Option<Encoding> {
        let Some(value) = value.map(str::trim) else {
            return Some(Encoding::Identity);
        };
        let is = |name: &str| value.eq_ignore_ascii_case(name);
        if value.is_empty() || is("identity") {
            Some(Encoding::Identity)
        } else if is("gzip") || is("x-gzip") {
            Some(Encoding::Gzip)
        } else if is("deflate") {
            Some(Encoding::Deflate)
        } else if is("br") {
            Some(Encoding::Brotli)
        } else if is("zstd") {
            Some(Encoding::Zstd)
        } else {
            None
        }
    }
}

/// Decodes `raw` to at most `limit` bytes. The flag is true when output stopped at the limit
/// or the input ended mid-stream. Unencoded input is returned as it is, without a copy.
pub fn decode(encoding: Encoding, mut raw: Vec<u8>, limit: usize) -> (Vec<u8>, bool) {
    let encoded = &raw[..];
    match encoding {
        Encoding::Identity => {
            let over = raw.len() > limit;
            raw.truncate(limit);
            (raw, over)
        }
        Encoding::Gzip => read_bounded(flate2::read::MultiGzDecoder::new(encoded), limit),
        Encoding::Deflate => {
            let (zlib, cut) = read_bounded(flate2::read::ZlibDecoder::new(encoded), limit);
            if zlib.is_empty() && !encoded.is_empty() {
                read_bounded(flate2::read::DeflateDecoder::new(encoded), limit)
            } else {
                (zlib, cut)
            }
        }
        Encoding::Brotli => read_bounded(brotli::Decompressor::new(encoded, 4096), limit),
        Encoding::Zstd => match zstd::stream::read::Decoder::with_buffer(encoded) {
            Ok(decoder) => read_bounded(decoder, limit),
            Err(_) => (Vec::new(), true),
        },
    }
}

fn read_bounded(decoder: impl Read, limit: usize) -> (Vec<u8>, bool) {
    let mut out = Vec::with_capacity(limit.min(16 * 1024));
    // One byte past the limit tells "exactly full" from "more to come".
    let mut bounded = decoder.take(limit as u64 + 1);
    let ended_cleanly = bounded.read_to_end(&mut out).is_ok();
    let over = out.len() > limit;
    out.truncate(limit);
    (out, over || !ended_cleanly)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    const TEXT: &[u8] =
        b"{\"error\":\"boom\",\"details\":[\"the quick brown fox jumps over the lazy dog\"]}";

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn every_supported_encoding_round_trips() {
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zlib.write_all(TEXT).unwrap();
        let mut raw_deflate =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        raw_deflate.write_all(TEXT).unwrap();
        let mut br = Vec::new();
        brotli::CompressorWriter::new(&mut br, 4096, 5, 22)
            .write_all(TEXT)
            .unwrap();
        let zstd = zstd::stream::encode_all(TEXT, 3).unwrap();
        for (encoding, encoded) in [
            (Encoding::Identity, TEXT.to_vec()),
            (Encoding::Gzip, gzip(TEXT)),
            (Encoding::Deflate, zlib.finish().unwrap()),
            (Encoding::Deflate, raw_deflate.finish().unwrap()),
            (Encoding::Brotli, br),
            (Encoding::Zstd, zstd),
        ] {
            let (decoded, cut) = decode(encoding, encoded, 1024);
            assert_eq!(decoded, TEXT, "{encoding:?}");
            assert!(!cut, "{encoding:?}");
        }
    }

    #[test]
    fn a_decompression_bomb_stops_at_the_limit() {
        let bomb = gzip(&vec![b'a'; 10 * 1024 * 1024]);
        assert!(bomb.len() < 16 * 1024);
        let (decoded, cut) = decode(Encoding::Gzip, bomb, 8192);
        assert_eq!(decoded.len(), 8192);
        assert!(cut);
    }

    #[test]
    fn a_cut_stream_still_yields_its_prefix() {
        let long: Vec<u8> = TEXT.iter().cycle().take(20_000).copied().collect();
        let encoded = gzip(&long);
        let (decoded, cut) = decode(
            Encoding::Gzip,
            encoded[..encoded.len() / 2].to_vec(),
            100_000,
        );
        assert!(!decoded.is_empty());
        assert!(long.starts_with(&decoded));
        assert!(cut);
    }

    #[test]
    fn unknown_and_stacked_codings_are_not_decoded() {
        assert_eq!(Encoding::parse(Some("gzip, br")), None);
        assert_eq!(Encoding::parse(Some("compress")), None);
        assert_eq!(Encoding::parse(None), Some(Encoding::Identity));
        assert_eq!(Encoding::parse(Some("GZIP")), Some(Encoding::Gzip));
    }
}
