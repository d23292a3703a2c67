//! A streaming reader of HTTP Archive (HAR 1.2) files.
//!
//! `log.entries` is read one entry at a time straight from the file, so memory follows the
//! largest entry, not the file. An entry whose JSON is well formed but does not have the shape
//! HAR gives it is reported by its index and skipped; malformed JSON ends the file there.

use std::fmt;
use std::io::Read;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// One recorded exchange, as far as the rules need it.
#[derive(Debug, Deserialize)]
pub struct Entry {
    /// When the request began (`startedDateTime`, ISO 8601), for the observed contract's
    /// "last seen".
    #[serde(default, rename = "startedDateTime")]
    pub started: Option<String>,
    /// The request as recorded; only its method, URL and header fields are read.
    pub request: Request,
    /// The final response as recorded (HAR keeps no interim 1xx).
    pub response: Response,
}

/// `entry.request`.
#[derive(Debug, Deserialize)]
pub struct Request {
    /// The method as the recording spells it, checked when judged.
    pub method: String,
    /// The absolute URL; only its path is read, never its query.
    pub url: String,
    /// The request header fields, in order, duplicates kept.
    #[serde(default)]
    pub headers: Vec<Header>,
}

/// `entry.response`.
#[derive(Debug, Deserialize)]
pub struct Response {
    /// The status; 0 when the browser recorded no response (blocked, aborted, failed).
    pub status: i64,
    /// The response header fields, in order; HTTP/2 pseudo-fields are skipped when judged.
    #[serde(default)]
    pub headers: Vec<Header>,
    /// The body as recorded.
    #[serde(default)]
    pub content: Content,
}

/// `entry.response.content`.
#[derive(Debug, Default, Deserialize)]
pub struct Content {
    /// The body's media type as the recorder saw it.
    #[serde(rename = "mimeType", default)]
    pub mime_type: Option<String>,
    /// The body: text, or base64 when `encoding` says so; absent when not recorded.
    #[serde(default)]
    pub text: Option<String>,
    /// `base64` for binary-safe bodies.
    #[serde(default)]
    pub encoding: Option<String>,
    /// The body's length after decoding, as recorded (-1 or absent when unknown).
    #[serde(default)]
    pub size: Option<i64>,
}

/// One header field as HAR writes it: a name and a value, both text.
#[derive(Debug, Deserialize)]
pub struct Header {
    /// The field name.
    pub name: String,
    /// The field value.
    pub value: String,
}

/// Reads `reader` as a HAR document, calling `visit(index, entry)` for each entry: `Ok` with
/// the entry, or `Err` naming what was wrong with it. `Err` from the function itself means the
/// document could not be read on (malformed JSON, or not HAR at all); entries visited before
/// stand.
pub fn read_entries(
    reader: impl Read,
    mut visit: impl FnMut(usize, Result<Entry, String>),
) -> Result<(), String> {
    let mut deserializer = serde_json::Deserializer::from_reader(std::io::BufReader::new(reader));
    let mut state = State {
        visit: &mut visit,
        next_index: 0,
        saw_entries: false,
    };
    let found = (&mut deserializer)
        .deserialize_map(Root(&mut state))
        .map_err(|e| at_entry(&e, state.next_index, state.saw_entries))?;
    deserializer
        .end()
        .map_err(|e| format!("after the document: {e}"))?;
    if !found {
        return Err("not a HAR file: no `log.entries` array".to_string());
    }
    Ok(())
}

fn at_entry(error: &serde_json::Error, index: usize, in_entries: bool) -> String {
    if in_entries {
        format!("entry {index}: {error}")
    } else {
        format!("{error}")
    }
}

struct State<'a> {
    visit: &'a mut dyn FnMut(usize, Result<Entry, String>),
    next_index: usize,
    saw_entries: bool,
}

/// The document: finds `log`.
struct Root<'s, 'a>(&'s mut State<'a>);

impl<'de> Visitor<'de> for Root<'_, '_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a HAR document (a JSON object with `log`)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut found = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == "log" {
                found = map.next_value_seed(Log(&mut *self.0))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// `log`: finds `entries`.
struct Log<'s, 'a>(&'s mut State<'a>);

impl<'de> DeserializeSeed<'de> for Log<'_, '_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Log<'_, '_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the HAR `log` object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut found = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == "entries" {
                self.0.saw_entries = true;
                map.next_value_seed(Entries(&mut *self.0))?;
                self.0.saw_entries = false;
                found = true;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// `log.entries`: each entry is read whole (as a JSON value, so a misshapen one can be
/// reported and skipped), handed on, and dropped before the next.
struct Entries<'s, 'a>(&'s mut State<'a>);

impl<'de> DeserializeSeed<'de> for Entries<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Entries<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the HAR `entries` array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(value) = seq.next_element::<serde_json::Value>()? {
            let index = self.0.next_index;
            self.0.next_index += 1;
            let entry = serde_json::from_value::<Entry>(value)
                .map_err(|e| format!("entry {index}: not a HAR entry: {e}"));
            (self.0.visit)(index, entry);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> (Vec<Result<String, String>>, Result<(), String>) {
        let mut seen = Vec::new();
        let result = read_entries(text.as_bytes(), |_, entry| {
            seen.push(entry.map(|e| e.request.url));
        });
        (seen, result)
    }

    #[test]
    fn reads_entries_in_order_and_ignores_everything_else() {
        let (seen, result) = read(
            r#"{"log": {"version": "1.2", "creator": {"name": "x"}, "pages": [],
                "entries": [
                  {"request": {"method": "GET", "url": "http://a/1", "headers": []},
                   "response": {"status": 200, "headers": [], "content": {"size": 0}},
                   "timings": {"wait": 1}},
                  {"request": {"method": "GET", "url": "http://a/2"},
                   "response": {"status": 404}}
                ], "comment": "after"}}"#,
        );
        assert_eq!(result, Ok(()));
        assert_eq!(
            seen,
            vec![Ok("http://a/1".to_string()), Ok("http://a/2".to_string())]
        );
    }

    #[test]
    fn a_misshapen_entry_is_named_and_the_rest_still_read() {
        let (seen, result) = read(
            r#"{"log": {"entries": [
                {"request": {"method": "GET", "url": "http://a/1"}, "response": {"status": "x"}},
                {"request": {"method": "GET", "url": "http://a/2"}, "response": {"status": 200}}
            ]}}"#,
        );
        assert_eq!(result, Ok(()));
        assert!(seen[0].as_ref().unwrap_err().starts_with("entry 0:"));
        assert_eq!(seen[1], Ok("http://a/2".to_string()));
    }

    #[test]
    fn malformed_json_names_the_entry_it_broke_in() {
        let (seen, result) = read(
            r#"{"log": {"entries": [
                {"request": {"method": "GET", "url": "http://a/1"}, "response": {"status": 200}},
                {"request": {"method": "GET", "url": "http://a/2"}, "response": {"status": 2"#,
        );
        assert_eq!(seen.len(), 1);
        assert!(result.unwrap_err().starts_with("entry 1:"));
    }

    #[test]
    fn json_that_is_not_har_is_refused() {
        assert!(read(r#"{"hello": [1, 2]}"#)
            .1
            .unwrap_err()
            .contains("not a HAR file"));
        assert!(read("[1, 2]").1.is_err());
    }
}
