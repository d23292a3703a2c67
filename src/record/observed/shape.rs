//! A JSON Schema learnt from bodies: the types each value has had, the properties each object
//! has had and how often, what arrays held, and the string formats every value matched. No
//! value is kept — bodies carry personal data — only names and shapes, within limits.

use std::borrow::Cow;

use jsonschema::json::{Array, JsonNumber, Node, Object};
use jsonschema::JsonType;
use serde_json::{json, Map, Value};

use super::ObservedLimits;
use crate::contract::tape::TapeNode;

const NULL: u8 = 1;
const BOOLEAN: u8 = 1 << 1;
const INTEGER: u8 = 1 << 2;
const NUMBER: u8 = 1 << 3;
const STRING: u8 = 1 << 4;
const ARRAY: u8 = 1 << 5;
const OBJECT: u8 = 1 << 6;

/// A string format learning recognises: its bit, its JSON Schema name, and its test.
type Format = (u8, &'static str, fn(&str) -> bool);

/// The string formats learning recognises, in the order a schema names the first that every
/// value matched.
const FORMATS: [Format; 5] = [
    (1, "uuid", is_uuid),
    (1 << 1, "date-time", is_date_time),
    (1 << 2, "date", is_date),
    (1 << 3, "email", is_email),
    (1 << 4, "uri", is_uri),
];

/// Elements of one array learnt: the rest share their shape, or a later body's first ones
/// will say otherwise.
const ELEMENTS_LEARNT: usize = 8;

/// What the values at one place in a body have been.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SchemaShape {
    /// Values learnt here.
    seen: u64,
    /// The JSON types among them (bits above).
    types: u8,
    /// The formats every string among them matched (bits of [`FORMATS`]).
    formats: u8,
    /// What the objects among them held.
    object: Option<Box<ObjectShape>>,
    /// What the arrays among them held; `None` while every array was empty.
    items: Option<Box<SchemaShape>>,
    /// Nesting past `observed.max_depth` was not learnt.
    too_deep: bool,
}

/// The properties objects had, each with how many objects had it.
#[derive(Debug, Clone, Default, PartialEq)]
struct ObjectShape {
    objects: u64,
    properties: Vec<Property>,
    /// Some property was not learnt: past `observed.max_properties`, or the schema's budget.
    truncated: bool,
}

#[derive(Debug, Clone, PartialEq)]
struct Property {
    name: Box<str>,
    present: u64,
    shape: SchemaShape,
}

/// How much more a schema may grow: properties in all its objects together.
pub struct PropertyBudget(pub usize);

impl SchemaShape {
    /// Learns one value.
    pub fn learn(
        &mut self,
        node: TapeNode<'_>,
        depth: usize,
        limits: &ObservedLimits,
        budget: &mut PropertyBudget,
    ) {
        self.seen += 1;
        match node.json_type() {
            JsonType::Null => self.types |= NULL,
            JsonType::Boolean => self.types |= BOOLEAN,
            JsonType::Number | JsonType::Integer => {
                let integer = node.as_number().is_some_and(|n| n.is_integer());
                self.types |= if integer { INTEGER } else { NUMBER };
            }
            JsonType::String => {
                // Only the formats every earlier string matched are still worth a test.
                let candidates = if self.types & STRING == 0 {
                    u8::MAX
                } else {
                    self.formats
                };
                if candidates != 0 {
                    let text = node.as_string().unwrap_or(Cow::Borrowed(""));
                    self.formats = FORMATS
                        .iter()
                        .filter(|(bit, _, matches)| candidates & bit != 0 && matches(&text))
                        .fold(0, |bits, (bit, _, _)| bits | bit);
                }
                self.types |= STRING;
            }
            JsonType::Array => {
                self.types |= ARRAY;
                if depth >= limits.max_depth {
                    self.too_deep = true;
                    return;
                }
                let Some(array) = node.as_array() else { return };
                for element in array.elements().take(ELEMENTS_LEARNT) {
                    self.items.get_or_insert_with(Box::default).learn(
                        element,
                        depth + 1,
                        limits,
                        budget,
                    );
                }
            }
            JsonType::Object => {
                self.types |= OBJECT;
                let object = self.object.get_or_insert_with(Box::default);
                object.objects += 1;
                if depth >= limits.max_depth {
                    self.too_deep = true;
                    return;
                }
                let Some(members) = node.as_object() else {
                    return;
                };
                for (name, value) in members.members() {
                    object.learn_member(&name, value, depth, limits, budget);
                }
            }
        }
    }

    /// Merges what `other` learnt into this (the same place, learnt elsewhere): the result is
    /// what learning both sets of values here would have learnt, within the same limits.
    pub fn merge(
        &mut self,
        other: &SchemaShape,
        limits: &ObservedLimits,
        budget: &mut PropertyBudget,
    ) {
        self.formats = match (self.types & STRING, other.types & STRING) {
            (0, _) => other.formats,
            (_, 0) => self.formats,
            _ => self.formats & other.formats,
        };
        self.seen += other.seen;
        self.types |= other.types;
        self.too_deep |= other.too_deep;
        if let Some(theirs) = &other.object {
            let mine = self.object.get_or_insert_with(Box::default);
            mine.objects += theirs.objects;
            mine.truncated |= theirs.truncated;
            for property in &theirs.properties {
                mine.merge_property(property, limits, budget);
            }
        }
        if let Some(items) = &other.items {
            self.items
                .get_or_insert_with(Box::default)
                .merge(items, limits, budget);
        }
    }

    /// The shape as a JSON Schema (2020-12, as OpenAPI 3.1 uses it).
    pub fn to_schema(&self) -> Value {
        let mut schema = Map::new();
        let mut types: Vec<&str> = [
            (OBJECT, "object"),
            (ARRAY, "array"),
            (STRING, "string"),
            (INTEGER, "integer"),
            (NUMBER, "number"),
            (BOOLEAN, "boolean"),
            (NULL, "null"),
        ]
        .iter()
        .filter(|(bit, _)| self.types & bit != 0)
        .map(|(_, name)| *name)
        .collect();
        // An integer is a number: a place that held both is a number.
        if self.types & NUMBER != 0 {
            types.retain(|name| *name != "integer");
        }
        match types.as_slice() {
            [] => {}
            [one] => {
                schema.insert("type".into(), json!(one));
            }
            many => {
                schema.insert("type".into(), json!(many));
            }
        }
        if let Some((_, name, _)) = FORMATS.iter().find(|(bit, _, _)| self.formats & bit != 0) {
            if self.types & STRING != 0 {
                schema.insert("format".into(), json!(name));
            }
        }
        if let Some(object) = &self.object {
            object.describe(&mut schema);
        }
        if self.types & ARRAY != 0 {
            let items = self
                .items
                .as_ref()
                .map_or_else(|| json!({}), |s| s.to_schema());
            schema.insert("items".into(), items);
        }
        if self.too_deep {
            schema.insert("x-statuscope-limit".into(), json!("depth"));
        }
        Value::Object(schema)
    }
}

impl SchemaShape {
    /// The shape a schema this module wrote describes, as if learnt from `objects` values
    /// (each object having its `required` properties and lacking the others once), so that
    /// merging it gives what merging the shapes it was written from would: the read half of
    /// `statuscope contract merge`.
    pub fn from_schema(schema: &Value, values: u64) -> SchemaShape {
        let values = values.max(1);
        let types: Vec<&str> = match &schema["type"] {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let bits = types.iter().fold(0, |bits, name| {
            bits | match *name {
                "null" => NULL,
                "boolean" => BOOLEAN,
                "integer" => INTEGER,
                "number" => NUMBER,
                "string" => STRING,
                "array" => ARRAY,
                "object" => OBJECT,
                _ => 0,
            }
        });
        let format = schema["format"].as_str();
        let formats = FORMATS
            .iter()
            .filter(|(_, name, _)| Some(*name) == format)
            .fold(0, |bits, (bit, _, _)| bits | bit);
        let limit = schema["x-statuscope-limit"].as_str();
        let object = schema["properties"].as_object().map(|properties| {
            let required: Vec<&str> = schema["required"]
                .as_array()
                .map(|names| names.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            Box::new(ObjectShape {
                objects: values,
                properties: properties
                    .iter()
                    .map(|(name, schema)| Property {
                        name: name.as_str().into(),
                        present: if required.contains(&name.as_str()) {
                            values
                        } else {
                            values - 1
                        },
                        shape: SchemaShape::from_schema(schema, values),
                    })
                    .collect(),
                truncated: limit == Some("properties"),
            })
        });
        let items = schema
            .get("items")
            .filter(|items| items.as_object().is_some_and(|i| !i.is_empty()))
            .map(|items| Box::new(SchemaShape::from_schema(items, values)));
        SchemaShape {
            seen: values,
            types: bits,
            formats,
            object,
            items,
            too_deep: limit == Some("depth"),
        }
    }
}

impl ObjectShape {
    fn learn_member(
        &mut self,
        name: &str,
        value: TapeNode<'_>,
        depth: usize,
        limits: &ObservedLimits,
        budget: &mut PropertyBudget,
    ) {
        let at = match self.properties.iter().position(|p| &*p.name == name) {
            Some(at) => at,
            None if self.properties.len() < limits.max_properties && budget.0 > 0 => {
                budget.0 -= 1;
                self.properties.push(Property {
                    name: name.into(),
                    present: 0,
                    shape: SchemaShape::default(),
                });
                self.properties.len() - 1
            }
            None => {
                self.truncated = true;
                return;
            }
        };
        let property = &mut self.properties[at];
        property.present += 1;
        property.shape.learn(value, depth + 1, limits, budget);
    }

    fn merge_property(
        &mut self,
        theirs: &Property,
        limits: &ObservedLimits,
        budget: &mut PropertyBudget,
    ) {
        if let Some(mine) = self.properties.iter_mut().find(|p| p.name == theirs.name) {
            mine.present += theirs.present;
            mine.shape.merge(&theirs.shape, limits, budget);
        } else if self.properties.len() < limits.max_properties && budget.0 > 0 {
            budget.0 -= 1;
            let mut shape = SchemaShape::default();
            shape.merge(&theirs.shape, limits, budget);
            self.properties.push(Property {
                name: theirs.name.clone(),
                present: theirs.present,
                shape,
            });
        } else {
            self.truncated = true;
        }
    }

    fn describe(&self, schema: &mut Map<String, Value>) {
        let mut properties: Vec<&Property> = self.properties.iter().collect();
        properties.sort_by(|a, b| a.name.cmp(&b.name));
        let required: Vec<&str> = properties
            .iter()
            .filter(|p| p.present == self.objects)
            .map(|p| &*p.name)
            .collect();
        let described: Map<String, Value> = properties
            .iter()
            .map(|p| (p.name.to_string(), p.shape.to_schema()))
            .collect();
        schema.insert("properties".into(), Value::Object(described));
        if !required.is_empty() {
            schema.insert("required".into(), json!(required));
        }
        if self.truncated {
            schema.insert("x-statuscope-limit".into(), json!("properties"));
        }
    }
}

fn digits(text: &[u8]) -> bool {
    !text.is_empty() && text.iter().all(u8::is_ascii_digit)
}

/// `YYYY-MM-DD` (RFC 3339 `full-date`).
fn is_date(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 10
        && digits(&b[..4])
        && b[4] == b'-'
        && digits(&b[5..7])
        && b[7] == b'-'
        && digits(&b[8..])
}

/// RFC 3339 `date-time`: a date, `T`, `HH:MM:SS`, an optional fraction, `Z` or an offset.
fn is_date_time(text: &str) -> bool {
    let b = text.as_bytes();
    if b.len() < 20 || !is_date(&text[..10]) || !matches!(b[10], b'T' | b't') {
        return false;
    }
    let time = &b[11..];
    if !(digits(&time[..2])
        && time[2] == b':'
        && digits(&time[3..5])
        && time[5] == b':'
        && digits(&time[6..8]))
    {
        return false;
    }
    let mut rest = &time[8..];
    if let [b'.', tail @ ..] = rest {
        let fraction = tail.iter().take_while(|b| b.is_ascii_digit()).count();
        if fraction == 0 {
            return false;
        }
        rest = &tail[fraction..];
    }
    match rest {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|b| b.is_ascii_digit()),
        _ => false,
    }
}

/// 8-4-4-4-12 hexadecimal digits.
fn is_uuid(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// `local@domain.tld`, no whitespace.
fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !text.contains(char::is_whitespace)
}

/// An absolute URI: a scheme (a letter, then letters, digits, `+`, `-`, `.`), `:`, and more,
/// no whitespace.
fn is_uri(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
        && !text.contains(|c: char| c.is_whitespace() || c.is_control())
}
