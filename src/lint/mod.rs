//! `statuscope lint`: the rule catalogue over recorded traffic (HAR files), before it ships.
//!
//! Each entry is judged exactly as the sidecar judges a live exchange: the same route
//! templates, the same rule set and configuration, the same body sampler and decoders.

pub mod har;

use std::io::Read;
use std::path::Path;

use base64::Engine as _;
use http::header::{HeaderName, HeaderValue};
use http::Method;

use crate::classify::method_label;
use crate::classify::route::RouteTable;
use crate::config::Config;
use crate::contract::coverage::Snapshot;
use crate::record::findings::Place;
use crate::record::observed::{Learnt, Observed};
use crate::record::report::Report;
use crate::record::verdict::{self, ReportVerdicts};
use crate::rules::rule_set::RuleSet;
use crate::rules::{self, Field, Headers, RequestFacts};
use crate::sample::Sampler;
use har::Entry;

/// Judges recorded exchanges with a configuration's routes and rules.
pub struct Linter {
    routes: RouteTable,
    rules: RuleSet,
    body_sample_bytes: usize,
    /// The observed contract learnt from the recordings, when `observed.enabled`.
    observed: Option<Observed>,
}

impl Linter {
    /// A linter with `config`'s route templates, rule settings and sample size.
    pub fn new(config: &Config) -> Self {
        Linter {
            routes: config.route_table(),
            rules: config.rule_set(config.contract.clone()),
            body_sample_bytes: config.body_sample_bytes,
            observed: config.observed.map(Observed::new),
        }
    }

    /// Lints one HAR document; `name` is how messages refer to it. Problems with the input go
    /// to `report.input_errors`, each naming `name` and the entry.
    pub fn lint(&self, name: &str, reader: impl Read, report: &mut Report) {
        let result = har::read_entries(reader, |index, entry| {
            let judged = entry.and_then(|entry| {
                self.judge(&entry, report, || format!("{name} entry {index}"))
                    .map_err(|problem| format!("entry {index}: {problem}"))
            });
            if let Err(problem) = judged {
                report.input_errors.push(format!("{name}: {problem}"));
            }
        });
        if let Err(problem) = result {
            report.input_errors.push(format!("{name}: {problem}"));
        }
    }

    /// The contract's coverage by every exchange linted so far, when one is configured.
    pub fn coverage(&self) -> Option<Snapshot> {
        self.rules.contract().map(|contract| contract.snapshot())
    }

    /// The observed contract of every exchange linted so far, the same learning the sidecar
    /// does live; `None` when `observed.enabled` is off.
    pub fn observed(&self) -> Option<Learnt> {
        self.observed.as_ref().map(Observed::learnt)
    }

    /// Lints the files named (`-` is standard input), each in turn; an unreadable one does
    /// not stop the others.
    pub fn lint_paths(&self, paths: &[impl AsRef<Path>], report: &mut Report) {
        for path in paths {
            let path = path.as_ref();
            if path.as_os_str() == "-" {
                self.lint("<stdin>", std::io::stdin().lock(), report);
                continue;
            }
            let name = path.display().to_string();
            match std::fs::File::open(path) {
                Ok(file) => self.lint(&name, file, report),
                Err(e) => report.input_errors.push(format!("{name}: {e}")),
            }
        }
    }

    fn judge(
        &self,
        entry: &Entry,
        report: &mut Report,
        source: impl Fn() -> String,
    ) -> Result<(), String> {
        report.exchanges += 1;
        let response = &entry.response;
        if response.status <= 0 {
            report.skipped += 1;
            return Ok(());
        }
        let status = u16::try_from(response.status)
            .map_err(|_| format!("status {} is out of range", response.status))?;
        let method = Method::from_bytes(entry.request.method.as_bytes())
            .map_err(|_| format!("`{}` is not a method", entry.request.method))?;
        let uri: http::Uri = entry
            .request
            .url
            .parse()
            .map_err(|e| format!("`{}` is not a URL: {e}", entry.request.url))?;
        let path = uri.path();
        let target = uri.path_and_query().map_or(path, |p| p.as_str());
        let fields = fields(&response.headers);
        let headers = Headers::List(&fields);
        let body = self.body(entry, headers)?;
        if matches!(body, Body::NotRecorded) && body_expected(entry, &method, status) {
            report.without_body += 1;
        }
        let route = self.routes.resolve(path);
        let method_label = method_label(&method);
        let exchange = rules::Exchange {
            method: &method,
            route: &route.label,
            path,
            request: RequestFacts::from_fields(target.as_bytes(), |name| {
                entry
                    .request
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case(name))
                    .map(|h| h.value.as_bytes())
            }),
            status,
            headers,
            content_type: headers.media_type(),
            // HAR keeps only the final response.
            sent_continue: false,
            body: match &body {
                Body::Sampled(sample) => Some(sample),
                Body::NotRecorded | Body::NotRead => None,
            },
            error_fields: &[],
            contract: None,
            // HAR records no trailers, where gRPC puts a call's status: the gRPC rules judge
            // live traffic only.
            grpc_trailers: None,
        };
        if let Some(observed) = &self.observed {
            match entry.started.as_deref().and_then(recorded_at) {
                Some(seen) => observed.learn_at(&exchange, seen),
                None => observed.learn(&exchange, std::time::Instant::now()),
            }
        }
        let place = Place {
            route: &route.label,
            method: method_label,
            path,
            status,
        };
        let mut verdicts = ReportVerdicts {
            report,
            source: || Some(source()),
        };
        verdict::judge(&self.rules, &exchange, place, &mut verdicts);
        Ok(())
    }

    /// The body as the sidecar would have sampled it.
    fn body(&self, entry: &Entry, headers: Headers<'_>) -> Result<Body, String> {
        let content = &entry.response.content;
        let Some(text) = &content.text else {
            return Ok(Body::NotRecorded);
        };
        let bytes = match content.encoding.as_deref() {
            Some(encoding) if encoding.eq_ignore_ascii_case("base64") => {
                base64::engine::general_purpose::STANDARD
                    .decode(text.trim())
                    .map_err(|e| format!("the body is not valid base64: {e}"))?
            }
            _ => text.as_bytes().to_vec(),
        };
        let content_type = headers
            .get_str("content-type")
            .or(content.mime_type.as_deref());
        let encoding = recorded_encoding(headers.get_str("content-encoding"), &bytes);
        Ok(
            match Sampler::start(self.body_sample_bytes, content_type, encoding) {
                Some(mut sampler) => {
                    sampler.feed(&bytes);
                    Body::Sampled(sampler.finish())
                }
                None => Body::NotRead,
            },
        )
    }
}

/// A recorded response body, as far as the rules are concerned.
enum Body {
    /// The recording has no body: body rules cannot judge the entry.
    NotRecorded,
    /// A body no rule reads (its type, or sampling switched off).
    NotRead,
    /// The body as the sidecar would have sampled it.
    Sampled(crate::sample::Sample),
}

/// The response header fields; HTTP/2 pseudo-headers and invalid fields are left out, as a
/// live response could not carry them.
fn fields(headers: &[har::Header]) -> Vec<Field<'_>> {
    headers
        .iter()
        .filter(|h| {
            !h.name.starts_with(':')
                && HeaderName::from_bytes(h.name.as_bytes()).is_ok()
                && HeaderValue::from_str(&h.value).is_ok()
        })
        .map(|h| Field {
            name: h.name.as_bytes(),
            value: h.value.trim().as_bytes(),
        })
        .collect()
}

/// Browsers export bodies decoded, while `Content-Encoding` still names the coding; other
/// recorders keep the bytes as they came. The bytes decide: a coding applies only when they
/// carry its signature (brotli has none: it applies when the bytes are not text).
fn recorded_encoding<'a>(declared: Option<&'a str>, bytes: &[u8]) -> Option<&'a str> {
    let declared = declared?;
    let is = |name: &str| declared.trim().eq_ignore_ascii_case(name);
    let compressed = if is("gzip") || is("x-gzip") {
        bytes.starts_with(&[0x1f, 0x8b])
    } else if is("zstd") {
        bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
    } else if is("deflate") {
        // A zlib header: compression method 8 and a check value divisible by 31.
        matches!(bytes, [cmf, flg, ..] if cmf & 0x0f == 8 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0)
    } else if is("br") {
        std::str::from_utf8(bytes).is_err()
    } else {
        false
    };
    compressed.then_some(declared)
}

/// Would this response have had a body for the rules to read?
fn body_expected(entry: &Entry, method: &Method, status: u16) -> bool {
    *method != Method::HEAD
        && !matches!(status, 100..=199 | 204 | 304)
        && entry.response.content.size != Some(0)
}

/// Seconds since the Unix epoch of a HAR `startedDateTime` (ISO 8601: a date, `T`, a time
/// with or without a fraction, and `Z` or an offset such as `+01:00`).
fn recorded_at(text: &str) -> Option<u64> {
    let text = text.trim();
    let (local, offset) = match text.len().checked_sub(6).map(|at| text.split_at(at)) {
        Some((local, zone)) if zone.starts_with(['+', '-']) && zone.as_bytes()[3] == b':' => {
            let hours: i64 = zone[1..3].parse().ok()?;
            let minutes: i64 = zone[4..].parse().ok()?;
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            (local, sign * (hours * 3600 + minutes * 60))
        }
        _ => (text.trim_end_matches(['Z', 'z']), 0),
    };
    let time = humantime::parse_rfc3339_weak(local).ok()?;
    let seconds = time.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    u64::try_from(i64::try_from(seconds).ok()? - offset).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_coding_applies_only_to_bytes_that_carry_it() {
        assert_eq!(recorded_encoding(Some("gzip"), b"{\"a\":1}"), None);
        assert_eq!(
            recorded_encoding(Some("gzip"), &[0x1f, 0x8b, 8, 0]),
            Some("gzip")
        );
        assert_eq!(recorded_encoding(Some("br"), b"<html>"), None);
        assert_eq!(
            recorded_encoding(Some("br"), &[0x8b, 0xff, 0x01]),
            Some("br")
        );
        assert_eq!(
            recorded_encoding(Some("deflate"), &[0x78, 0x9c, 1]),
            Some("deflate")
        );
        assert_eq!(recorded_encoding(None, &[0x1f, 0x8b]), None);
    }

    #[test]
    fn a_recording_s_time_is_read_with_its_offset() {
        let utc = recorded_at("2026-12-05T10:00:00Z").unwrap();
        assert_eq!(recorded_at("2026-12-05T10:00:00.123Z"), Some(utc));
        assert_eq!(recorded_at("2026-12-05T11:00:00+01:00"), Some(utc));
        assert_eq!(recorded_at("2026-12-05T08:30:00-01:30"), Some(utc));
        assert_eq!(utc % 86_400, 10 * 3600);
        assert_eq!(recorded_at("yesterday"), None);
    }
}
