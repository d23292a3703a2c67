//! The body sampler's bounds, whatever the body, its chunking and its compression.

use proptest::prelude::*;
use statuscope::sample::Sampler;

use crate::support::upstream::encode;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_sample_never_exceeds_its_limit(
        body in prop::collection::vec(any::<u8>(), 0..20_000),
        repeat in 1usize..50,
        splits in prop::collection::vec(1usize..5000, 0..12),
        limit in 1usize..8192,
        encoding in prop::sample::select(vec!["identity", "gzip", "deflate", "br", "zstd"]),
    ) {
        // Repetition makes bodies that compress well, so decoded output can outgrow the input.
        let body: Vec<u8> = body.iter().copied().cycle().take(body.len() * repeat).collect();
        let wire = if encoding == "identity" { body.clone() } else { encode(encoding, &body) };
        let mut sampler = Sampler::start(limit, Some("application/json"), Some(encoding)).unwrap();
        let mut rest = &wire[..];
        for split in splits {
            let (chunk, tail) = rest.split_at(split.min(rest.len()));
            sampler.feed(chunk);
            rest = tail;
        }
        sampler.feed(rest);
        prop_assert!(sampler.sampled() <= limit);
        let sample = sampler.finish();
        prop_assert!(sample.bytes.len() <= limit);
        prop_assert!(body.starts_with(&sample.bytes), "the sample is a prefix of the body");
        if encoding == "identity" {
            prop_assert_eq!(sample.bytes.len(), body.len().min(limit));
            prop_assert_eq!(sample.truncated, body.len() > limit);
        }
    }
}
