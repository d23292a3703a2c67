//! What reaches the upstream, read by parsers nobody here wrote, on both engines: statuscope
//! sends its own HTTP version and origin-form targets, and whatever it forwards of 650 request
//! mutations (Transfer-Encoding and Content-Length obfuscations, chunk sizes, bare CR and LF,
//! obs-fold, absolute-form targets, versions, methods, pipelined pairs) is read identically by
//! h11 and by waitress's parser (`tests/tools/http1_differential.py`).

use std::path::PathBuf;
use std::process::Command;

use crate::support::{each_engine, python, raw_exchange, Peer, Statuscope};

/// The recording upstream, stopped (by its PID) when dropped, and the directory it writes.
struct Recorder {
    peer: Peer,
    dir: PathBuf,
}

impl Recorder {
    fn start(name: &str) -> Recorder {
        let dir = std::env::temp_dir().join(format!("statuscope-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let peer = Peer::start(
            "http1_differential.py",
            &["recorder", dir.to_str().unwrap()],
        );
        Recorder { peer, dir }
    }

    /// Every byte forwarded so far, connection after connection.
    fn received(&self) -> String {
        let mut names: Vec<_> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .filter(|name| !name.ends_with(".tmp"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|name| {
                String::from_utf8_lossy(&std::fs::read(self.dir.join(name)).unwrap()).into_owned()
            })
            .collect()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // The peer stops after this (fields drop last); a request it records meanwhile
        // fails in the recorder alone.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

each_engine! {
    fn every_http1_version_reaches_the_upstream_as_http11(engine) {
        let recorder = Recorder::start(&format!("versions-{engine:?}"));
        let statuscope = Statuscope::start(engine, recorder.peer.addr);
        for version in ["HTTP/1.0", "HTTP/1.1", "HTTP/1.2"] {
            let answer = raw_exchange(
                statuscope.listen,
                format!("GET /v {version}\r\nHost: svc\r\nConnection: close\r\n\r\n").as_bytes(),
            );
            assert!(answer.starts_with("HTTP/1.1 200"), "{version}: {answer}");
        }
        let received = recorder.received();
        let lines: Vec<_> = received.lines().filter(|l| l.starts_with("GET")).collect();
        assert_eq!(lines, ["GET /v HTTP/1.1"; 3], "{received}");
    }

    fn an_absolute_target_reaches_the_upstream_in_origin_form(engine) {
        let recorder = Recorder::start(&format!("absolute-{engine:?}"));
        let statuscope = Statuscope::start(engine, recorder.peer.addr);
        for (request, status) in [
            (&b"GET http://svc/a?b=1 HTTP/1.1\r\nHost: svc\r\nConnection: close\r\n\r\n"[..], "200"),
            (b"GET http://other/a HTTP/1.1\r\nHost: svc\r\nConnection: close\r\n\r\n", "400"),
            (b"PUT /a HTTP/1.1\r\nHost: svc\r\nExpect: 200-ok\r\nContent-Length: 0\r\n\r\n", "417"),
            (b"POST /n HTTP/1.1\r\nHost: svc\r\nContent-Length: 002\r\nConnection: close\r\n\r\nhi", "200"),
        ] {
            let answer = raw_exchange(statuscope.listen, request);
            assert!(answer.starts_with(&format!("HTTP/1.1 {status}")), "{answer}");
        }
        let received = recorder.received();
        assert!(received.starts_with("GET /a?b=1 HTTP/1.1\r\n"), "{received}");
        assert!(received.contains("POST /n HTTP/1.1\r\n"), "{received}");
        assert!(received.contains("\r\nContent-Length: 2\r\n") || received.contains("\r\ncontent-length: 2\r\n"), "{received}");
        assert!(!received.contains("other") && !received.contains("PUT"), "{received}");
    }

    fn what_is_forwarded_is_read_alike_by_a_strict_and_a_lenient_parser(engine) {
        let recorder = Recorder::start(&format!("differential-{engine:?}"));
        let statuscope = Statuscope::start(engine, recorder.peer.addr);
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/tools/http1_differential.py");
        let output = Command::new(python())
            .arg(script)
            .args(["corpus", &statuscope.listen.to_string(), recorder.dir.to_str().unwrap()])
            .output()
            .unwrap();
        let summary = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{summary}\n{}", String::from_utf8_lossy(&output.stderr));
        let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
        assert!(summary["mutations"].as_u64().unwrap() >= 500, "{summary}");
        assert!(summary["forwarded_requests"].as_u64().unwrap() > 0, "{summary}");
    }
}
