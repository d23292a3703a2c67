//! Bodies stream in both directions: large transfers pass without the proxy buffering them.

use std::io::{Read, Write};

use crate::support::each_engine;
use crate::support::upstream::Upstream;
use crate::support::{raw_connection, read_head, Statuscope};

const SIZE: usize = 256 * 1024 * 1024;
const RSS_LIMIT: u64 = 64 * 1024 * 1024;

each_engine! {
    fn large_download_and_upload_stream_without_growing_memory(engine) {
        let upstream = Upstream::start();
        let statuscope = Statuscope::start(engine, upstream.addr);

        let (mut writer, mut reader) = raw_connection(statuscope.listen);
        write!(writer, "GET /bytes/{SIZE} HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let head = read_head(&mut reader);
        assert!(head.status.starts_with("HTTP/1.1 200"), "{}", head.status);
        assert_eq!(head.content_length, Some(SIZE));
        let mut received = 0usize;
        let mut buf = vec![0u8; 1 << 16];
        while received < SIZE {
            let n = reader.read(&mut buf).unwrap();
            assert!(n > 0, "download ended early at {received}");
            received += n;
        }
        assert_eq!(received, SIZE);

        // Upload on the same keep-alive connection.
        write!(
            writer,
            "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: {SIZE}\r\n\r\n"
        )
        .unwrap();
        let chunk = vec![b'u'; 1 << 16];
        for _ in 0..SIZE / chunk.len() {
            writer.write_all(&chunk).unwrap();
        }
        let head = read_head(&mut reader);
        assert!(head.status.starts_with("HTTP/1.1 200"), "{}", head.status);
        let mut body = vec![0u8; head.content_length.unwrap()];
        reader.read_exact(&mut body).unwrap();
        assert_eq!(String::from_utf8(body).unwrap(), SIZE.to_string());

        statuscope.wait_idle();
        let peak = statuscope.peak_rss();
        println!(
            "peak RSS across 256 MiB each way: {:.1} MiB",
            peak as f64 / (1024.0 * 1024.0)
        );
        assert!(peak < RSS_LIMIT, "peak RSS {} MiB", peak / (1024 * 1024));
        assert_eq!(
            statuscope.total("statuscope_responses_total", &[("code", "200")]),
            2.0
        );
    }
}
