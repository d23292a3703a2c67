//! A JSON body as the schema validator reads it, without building a `serde_json::Value`.
//!
//! Building a `Value` for an 8 KiB body costs some 700 allocations — every key, every string,
//! every object — and measured seven times the validation itself (`cargo bench --bench rules`).
//! The tape is one pass over the sample's bytes into a flat list of spans, reused per thread:
//! strings and numbers stay in the body, read only when a keyword asks. It implements
//! `jsonschema`'s representation traits, so the same compiled schemas validate it.

use std::borrow::Cow;
use std::cell::RefCell;

use jsonschema::json::{Array, Json, JsonNumber, Node, NodeIdentity, Object};
use jsonschema::JsonType;
use serde_json::Value;

/// The bytes that end a run of plain string content: a quote, a backslash, a control byte.
const STRING_STOP: [bool; 256] = {
    let mut stop = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        stop[b] = true;
        b += 1;
    }
    stop[b'"' as usize] = true;
    stop[b'\\' as usize] = true;
    stop
};

/// Nesting deeper than this is refused, as `serde_json` refuses it.
const MAX_DEPTH: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Null,
    False,
    True,
    Number,
    String,
    Array,
    Object,
}

/// One value: its kind, its text (a string's without the quotes; a container's whole), where
/// its subtree ends on the tape, and a container's member or element count.
#[derive(Debug, Clone, Copy)]
struct Item {
    kind: Kind,
    start: u32,
    end: u32,
    next: u32,
    len: u32,
    escaped: bool,
}

/// Where `propertyNames` puts the one string it validates as a node.
#[derive(Default)]
pub struct StringScratch {
    text: String,
    items: Vec<Item>,
}

/// The representation marker for `jsonschema` (`Validator<TapeJson>`).
pub struct TapeJson;

/// One value on a tape.
#[derive(Debug, Clone, Copy)]
pub struct TapeNode<'a> {
    text: &'a str,
    items: &'a [Item],
    index: u32,
}

thread_local! {
    /// The tape of the last body parsed on this thread, kept for its capacity.
    static SPARE: RefCell<Vec<Item>> = const { RefCell::new(Vec::new()) };
}

/// Parses `body` and calls `f` with its root; `None` when it is not JSON (RFC 8259).
pub fn with_root<T>(body: &[u8], f: impl FnOnce(TapeNode<'_>) -> T) -> Option<T> {
    let text = std::str::from_utf8(body).ok()?;
    let mut items = SPARE.with(|spare| std::mem::take(&mut *spare.borrow_mut()));
    items.clear();
    let parsed = Parser {
        bytes: text.as_bytes(),
        at: 0,
        items: &mut items,
    }
    .document();
    let result = parsed.map(|()| {
        f(TapeNode {
            text,
            items: &items,
            index: 0,
        })
    });
    SPARE.with(|spare| *spare.borrow_mut() = items);
    result
}

struct Parser<'b, 'v> {
    bytes: &'b [u8],
    at: usize,
    items: &'v mut Vec<Item>,
}

impl Parser<'_, '_> {
    fn document(&mut self) -> Option<()> {
        self.value(0)?;
        self.space();
        (self.at == self.bytes.len()).then_some(())
    }

    fn space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    fn push(&mut self, kind: Kind, start: usize) -> usize {
        self.items.push(Item {
            kind,
            start: start as u32,
            end: 0,
            next: 0,
            len: 0,
            escaped: false,
        });
        self.items.len() - 1
    }

    fn close(&mut self, index: usize, end: usize, len: u32) {
        let next = self.items.len() as u32;
        let item = &mut self.items[index];
        item.end = end as u32;
        item.next = next;
        item.len = len;
    }

    fn literal(&mut self, word: &[u8], kind: Kind) -> Option<()> {
        if !self.bytes[self.at..].starts_with(word) {
            return None;
        }
        let index = self.push(kind, self.at);
        self.at += word.len();
        self.close(index, self.at, 0);
        Some(())
    }

    fn value(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH || self.bytes.len() > u32::MAX as usize {
            return None;
        }
        self.space();
        match *self.bytes.get(self.at)? {
            b'{' => self.container(depth, b'}', Kind::Object),
            b'[' => self.container(depth, b']', Kind::Array),
            b'"' => self.string(),
            b't' => self.literal(b"true", Kind::True),
            b'f' => self.literal(b"false", Kind::False),
            b'n' => self.literal(b"null", Kind::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn container(&mut self, depth: usize, close: u8, kind: Kind) -> Option<()> {
        let index = self.push(kind, self.at);
        self.at += 1;
        self.space();
        let mut len = 0;
        if self.bytes.get(self.at) == Some(&close) {
            self.at += 1;
            self.close(index, self.at, 0);
            return Some(());
        }
        loop {
            if kind == Kind::Object {
                self.space();
                if self.bytes.get(self.at) != Some(&b'"') {
                    return None;
                }
                self.string()?;
                self.space();
                if self.bytes.get(self.at) != Some(&b':') {
                    return None;
                }
                self.at += 1;
            }
            self.value(depth + 1)?;
            len += 1;
            self.space();
            match self.bytes.get(self.at)? {
                b',' => self.at += 1,
                b if *b == close => {
                    self.at += 1;
                    self.close(index, self.at, len);
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    fn string(&mut self) -> Option<()> {
        self.at += 1;
        let index = self.push(Kind::String, self.at);
        let mut escaped = false;
        loop {
            // Body strings are short: a table lookup per byte beats a vectorised search.
            while !STRING_STOP[usize::from(*self.bytes.get(self.at)?)] {
                self.at += 1;
            }
            match self.bytes[self.at] {
                b'"' => break,
                b'\\' => {}
                _ => return None, // a control byte
            }
            escaped = true;
            match *self.bytes.get(self.at + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.at += 2,
                b'u' => {
                    let hex = self.bytes.get(self.at + 2..self.at + 6)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    self.at += 6;
                }
                _ => return None,
            }
        }
        self.close(index, self.at, 0);
        self.items[index].escaped = escaped;
        self.at += 1;
        Some(())
    }

    fn number(&mut self) -> Option<()> {
        let start = self.at;
        let digits = |p: &mut Self| {
            let from = p.at;
            while p.bytes.get(p.at).is_some_and(u8::is_ascii_digit) {
                p.at += 1;
            }
            p.at > from
        };
        if self.bytes[self.at] == b'-' {
            self.at += 1;
        }
        match self.bytes.get(self.at) {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => {
                digits(self);
            }
            _ => return None,
        }
        if self.bytes.get(self.at) == Some(&b'.') {
            self.at += 1;
            if !digits(self) {
                return None;
            }
        }
        if let Some(b'e' | b'E') = self.bytes.get(self.at) {
            self.at += 1;
            if let Some(b'+' | b'-') = self.bytes.get(self.at) {
                self.at += 1;
            }
            if !digits(self) {
                return None;
            }
        }
        let index = self.push(Kind::Number, start);
        self.close(index, self.at, 0);
        Some(())
    }
}

impl<'a> TapeNode<'a> {
    #[inline]
    fn item(&self) -> &'a Item {
        &self.items[self.index as usize]
    }

    fn at(&self, index: u32) -> TapeNode<'a> {
        TapeNode { index, ..*self }
    }

    #[inline]
    fn raw(&self) -> &'a str {
        let item = self.item();
        &self.text[item.start as usize..item.end as usize]
    }

    #[inline]
    fn string(&self) -> Cow<'a, str> {
        let item = self.item();
        if !item.escaped {
            return Cow::Borrowed(self.raw());
        }
        let quoted = &self.text[item.start as usize - 1..item.end as usize + 1];
        Cow::Owned(serde_json::from_str(quoted).unwrap_or_default())
    }

    /// The members or elements of a container, in order: (key, value) pairs for an object.
    fn children(&self) -> Children<'a> {
        Children {
            node: *self,
            next: self.index + 1,
            end: self.item().next,
            object: self.item().kind == Kind::Object,
        }
    }
}

/// Walks a container's children on the tape.
#[derive(Clone)]
pub struct Children<'a> {
    node: TapeNode<'a>,
    next: u32,
    end: u32,
    object: bool,
}

impl<'a> Iterator for Children<'a> {
    type Item = (Option<TapeNode<'a>>, TapeNode<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.end {
            return None;
        }
        let key = self.object.then(|| self.node.at(self.next));
        if self.object {
            self.next += 1;
        }
        let value = self.node.at(self.next);
        self.next = value.item().next;
        Some((key, value))
    }
}

impl Json for TapeJson {
    type Node<'a> = TapeNode<'a>;
    type PreparedKey = String;
    type StringBuffer = StringScratch;

    // A lookup scans the members in order: past a few keys, one pass over them is cheaper.
    const KEYS_PER_LOOKUP: usize = 4;
    // A tape is a tree: no value contains itself.
    const ACYCLIC: bool = true;

    fn prepare_key(key: &str) -> String {
        key.to_owned()
    }

    fn with_string_node<T>(
        StringScratch { text, items }: &mut StringScratch,
        string: &str,
        f: impl FnOnce(TapeNode<'_>) -> T,
    ) -> T {
        text.clear();
        text.push_str(&serde_json::to_string(string).unwrap_or_default());
        items.clear();
        items.push(Item {
            kind: Kind::String,
            start: 1,
            end: (text.len() - 1) as u32,
            next: 1,
            len: 0,
            escaped: text.len() != string.len() + 2,
        });
        f(TapeNode {
            text,
            items,
            index: 0,
        })
    }
}

impl<'a> Node<'a, TapeJson> for TapeNode<'a> {
    type Object = TapeNode<'a>;
    type Array = TapeNode<'a>;
    type Number = TapeNumber<'a>;

    fn as_object(&self) -> Option<TapeNode<'a>> {
        (self.item().kind == Kind::Object).then_some(*self)
    }

    fn as_array(&self) -> Option<TapeNode<'a>> {
        (self.item().kind == Kind::Array).then_some(*self)
    }

    fn as_string(&self) -> Option<Cow<'a, str>> {
        (self.item().kind == Kind::String).then(|| self.string())
    }

    fn as_number(&self) -> Option<TapeNumber<'a>> {
        (self.item().kind == Kind::Number).then(|| TapeNumber(self.raw()))
    }

    fn as_boolean(&self) -> Option<bool> {
        match self.item().kind {
            Kind::True => Some(true),
            Kind::False => Some(false),
            _ => None,
        }
    }

    fn is_null(&self) -> bool {
        self.item().kind == Kind::Null
    }

    fn json_type(&self) -> JsonType {
        match self.item().kind {
            Kind::Null => JsonType::Null,
            Kind::False | Kind::True => JsonType::Boolean,
            Kind::Number => JsonType::Number,
            Kind::String => JsonType::String,
            Kind::Array => JsonType::Array,
            Kind::Object => JsonType::Object,
        }
    }

    fn to_value(&self) -> Cow<'a, Value> {
        let item = self.item();
        let text = match item.kind {
            Kind::String => &self.text[item.start as usize - 1..item.end as usize + 1],
            _ => self.raw(),
        };
        Cow::Owned(serde_json::from_str(text).unwrap_or(Value::Null))
    }

    fn identity(&self) -> Option<NodeIdentity> {
        Some(NodeIdentity::tagged(
            self.items.as_ptr() as usize,
            self.index,
        ))
    }
}

impl<'a> Object<'a, TapeJson> for TapeNode<'a> {
    type Node = TapeNode<'a>;
    type MemberName = Cow<'a, str>;
    type MembersIter = std::iter::Map<
        Children<'a>,
        fn((Option<TapeNode<'a>>, TapeNode<'a>)) -> (Cow<'a, str>, TapeNode<'a>),
    >;

    fn len(&self) -> usize {
        self.item().len as usize
    }

    fn get(&self, key: &String) -> Option<TapeNode<'a>> {
        self.children().find_map(|(name, value)| {
            let item = name?.item();
            let matches = if item.escaped {
                name?.string() == key.as_str()
            } else {
                // Lengths first: most names differ in length from the one sought.
                (item.end - item.start) as usize == key.len()
                    && &self.text.as_bytes()[item.start as usize..item.end as usize]
                        == key.as_bytes()
            };
            matches.then_some(value)
        })
    }

    fn members(&self) -> Self::MembersIter {
        self.children()
            .map(|(name, value)| (name.map_or(Cow::Borrowed(""), |name| name.string()), value))
    }
}

impl<'a> Array<'a, TapeJson> for TapeNode<'a> {
    type Node = TapeNode<'a>;
    type ElementsIter =
        std::iter::Map<Children<'a>, fn((Option<TapeNode<'a>>, TapeNode<'a>)) -> TapeNode<'a>>;

    fn len(&self) -> usize {
        self.item().len as usize
    }

    fn elements(&self) -> Self::ElementsIter {
        self.children().map(|(_, value)| value)
    }
}

/// A number as the body writes it, parsed only when a keyword asks.
#[derive(Debug, Clone, Copy)]
pub struct TapeNumber<'a>(&'a str);

impl JsonNumber for TapeNumber<'_> {
    fn as_u64(&self) -> Option<u64> {
        self.0.parse().ok()
    }

    fn as_i64(&self) -> Option<i64> {
        self.0.parse().ok()
    }

    fn as_f64(&self) -> Option<f64> {
        self.0.parse().ok()
    }

    fn as_str(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.0)
    }

    // `type: integer` asks for every number: answer from the text, not a parsed `Number`.
    fn is_integer(&self) -> bool {
        !self.0.contains(['.', 'e', 'E']) || self.as_f64().is_some_and(|f| f.fract() == 0.0)
    }

    fn to_number(&self) -> Cow<'_, serde_json::Number> {
        Cow::Owned(
            self.0
                .parse()
                .unwrap_or_else(|_| serde_json::Number::from(0)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str) -> Option<Value> {
        with_root(text.as_bytes(), |root| root.to_value().into_owned())
    }

    #[test]
    fn the_tape_reads_what_serde_json_reads() {
        for text in [
            r#"{"a": [1, -2.5e3, true, false, null], "b": {"c": "d\"\u00e9"}, "": {}}"#,
            "[]",
            " \"x\" ",
            "0",
        ] {
            assert_eq!(value(text), serde_json::from_str(text).ok(), "{text}");
        }
    }

    #[test]
    fn what_is_not_json_is_refused() {
        for text in [
            "",
            "{",
            "[1,]",
            "{\"a\" 1}",
            "01",
            "1.",
            "\"\u{1}\"",
            "tru",
            "[1] x",
            "\"\\x\"",
        ] {
            assert_eq!(value(text), None, "{text:?}");
        }
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert_eq!(value(&deep), None);
    }

    #[test]
    fn members_and_lookups_walk_the_tape() {
        with_root(br#"{"a": {"x": 1}, "b\u0021": [2, 3], "c": "s"}"#, |root| {
            let object = root.as_object().unwrap();
            assert_eq!(Object::len(&object), 3);
            let names: Vec<String> = object.members().map(|(n, _)| n.into_owned()).collect();
            assert_eq!(names, ["a", "b!", "c"]);
            let b = object.get(&"b!".to_string()).unwrap().as_array().unwrap();
            let numbers: Vec<u64> = b
                .elements()
                .map(|n| n.as_number().unwrap().as_u64().unwrap())
                .collect();
            assert_eq!(numbers, [2, 3]);
            assert_eq!(
                object.get(&"c".to_string()).unwrap().as_string().unwrap(),
                "s"
            );
            assert!(
                object.get(&"x".to_string()).is_none(),
                "only direct members"
            );
        })
        .unwrap();
    }
}
