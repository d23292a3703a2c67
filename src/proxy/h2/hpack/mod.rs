//! HPACK (RFC 7541), as a relay needs it.
//!
//! The [`Decoder`] keeps the peer's dynamic table and hands each field to a callback as slices
//! of the block itself, of the tables, or of a reused scratch buffer for Huffman-coded
//! strings: no header map, no hashing, no allocation per field. The encoder ([`encode_field`])
//! writes literals without indexing, with the static table's index for the name (or the whole
//! field) when it has one, and never Huffman-codes: it keeps no state per connection, never
//! needs the peer's table size, and costs a copy per field. The bytes saved by compression
//! would matter on a slow link, not between a sidecar and its service on loopback.

mod huffman;
mod table;

use table::{static_field_index, static_name_index, DynamicTable, STATIC};

pub use table::ENTRY_OVERHEAD;

/// The header table size statuscope allows its peers' encoders: the protocol default, so it is
/// never announced.
pub const TABLE_SIZE: usize = 4096;

/// A header block statuscope cannot decode: a COMPRESSION_ERROR, which ends the connection,
/// because the two tables can no longer agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompressionError(pub &'static str);

/// One peer's encoder, as seen from here: its dynamic table.
#[derive(Debug)]
pub struct Decoder {
    table: DynamicTable,
    /// Huffman-decoded names and values, reused from field to field.
    name: Vec<u8>,
    value: Vec<u8>,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            table: DynamicTable::new(TABLE_SIZE),
            name: Vec::new(),
            value: Vec::new(),
        }
    }
}

/// An integer with an `prefix`-bit prefix (RFC 7541 §5.1) at the start of `block`, and the
/// bytes it took. Values past 2^24 are refused: no length or index is ever that large.
fn decode_int(block: &[u8], prefix: u32) -> Result<(usize, usize), CompressionError> {
    const TRUNCATED: CompressionError = CompressionError("a truncated integer");
    let mask = (1usize << prefix) - 1;
    let first = usize::from(*block.first().ok_or(TRUNCATED)?) & mask;
    if first < mask {
        return Ok((first, 1));
    }
    let mut value = mask;
    let mut shift = 0;
    for (at, &byte) in block.iter().enumerate().skip(1) {
        value += usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok((value, at + 1));
        }
        shift += 7;
        if shift > 21 {
            return Err(CompressionError("an integer too large"));
        }
    }
    Err(TRUNCATED)
}

/// The field at `index` of the static table then the dynamic table.
fn entry(table: &DynamicTable, index: usize) -> Result<(&[u8], &[u8]), CompressionError> {
    match index {
        0 => Err(CompressionError("index 0")),
        1..=61 => Ok(STATIC[index - 1]),
        _ => table
            .get(index - 61)
            .ok_or(CompressionError("an index past the table")),
    }
}

/// Where a decoded string is: in the block, or in a scratch buffer.
enum Str {
    Raw(usize, usize),
    Decoded,
}

/// Reads a string literal (RFC 7541 §5.2) at the start of `block`: its location and length on
/// the wire. A Huffman-coded one is decoded into `scratch`.
fn decode_str(block: &[u8], scratch: &mut Vec<u8>) -> Result<(Str, usize), CompressionError> {
    let (len, taken) = decode_int(block, 7)?;
    let end = taken
        .checked_add(len)
        .filter(|&end| end <= block.len())
        .ok_or(CompressionError("a string longer than its block"))?;
    if block[0] & 0x80 == 0 {
        return Ok((Str::Raw(taken, end), end));
    }
    scratch.clear();
    huffman::decode(&block[taken..end], scratch)
        .map_err(|_| CompressionError("an invalid Huffman code"))?;
    Ok((Str::Decoded, end))
}

impl Decoder {
    /// Decodes one complete header block, handing each field to `field` in order.
    pub fn decode(
        &mut self,
        mut block: &[u8],
        mut field: impl FnMut(&[u8], &[u8]),
    ) -> Result<(), CompressionError> {
        let mut first = true;
        while let Some(&byte) = block.first() {
            let taken = if byte & 0x80 != 0 {
                let (index, taken) = decode_int(block, 7)?;
                let (name, value) = entry(&self.table, index)?;
                field(name, value);
                taken
            } else if byte & 0xe0 == 0x20 {
                // RFC 7541 §4.2: only at the start of a block.
                let (size, taken) = decode_int(block, 5)?;
                if !first || !self.table.resize(size) {
                    return Err(CompressionError(
                        "a misplaced or oversized table size update",
                    ));
                }
                taken
            } else {
                let indexing = byte & 0xc0 == 0x40;
                self.literal(block, if indexing { 6 } else { 4 }, indexing, &mut field)?
            };
            first &= byte & 0xe0 == 0x20;
            block = &block[taken..];
        }
        Ok(())
    }

    /// A literal field representation; adds it to the table when `indexing`. Returns the bytes
    /// it took.
    fn literal(
        &mut self,
        block: &[u8],
        prefix: u32,
        indexing: bool,
        field: &mut impl FnMut(&[u8], &[u8]),
    ) -> Result<usize, CompressionError> {
        let (index, mut at) = decode_int(block, prefix)?;
        let name = if index == 0 {
            let (name, taken) = decode_str(&block[at..], &mut self.name)?;
            let name = match name {
                Str::Raw(start, end) => Some((at + start, at + end)),
                Str::Decoded => None,
            };
            at += taken;
            name
        } else {
            let (name, _) = entry(&self.table, index)?;
            // Copied: inserting the field may evict the entry it names.
            self.name.clear();
            self.name.extend_from_slice(name);
            None
        };
        let (value, taken) = decode_str(&block[at..], &mut self.value)?;
        let value_at = at;
        at += taken;
        let name = name.map_or(&self.name[..], |(start, end)| &block[start..end]);
        let value = match value {
            Str::Raw(start, end) => &block[value_at + start..value_at + end],
            Str::Decoded => &self.value[..],
        };
        field(name, value);
        if indexing {
            self.table.insert(name, value);
        }
        Ok(at)
    }
}

/// Appends an integer with a `prefix`-bit prefix whose other bits are `flags`.
#[inline]
fn encode_int(out: &mut Vec<u8>, flags: u8, prefix: u32, mut value: usize) {
    let mask = (1usize << prefix) - 1;
    if value < mask {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | mask as u8);
    value -= mask;
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends a string literal, not Huffman-coded.
fn encode_str(out: &mut Vec<u8>, bytes: &[u8]) {
    encode_int(out, 0, 7, bytes.len());
    out.extend_from_slice(bytes);
}

/// Appends one field to a header block: indexed when the static table holds it whole, else a
/// literal without indexing, its name indexed when the static table has it.
pub fn encode_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    if let Some(index) = static_field_index(name, value) {
        return encode_int(out, 0x80, 7, index);
    }
    match static_name_index(name) {
        Some(index) => encode_int(out, 0, 4, index),
        None => {
            out.push(0);
            encode_str(out, name);
        }
    }
    encode_str(out, value);
}

/// The bytes of RFC 7541's examples, written as hex digits in groups.
#[cfg(test)]
fn hex(text: &str) -> Vec<u8> {
    let digits: String = text.split_whitespace().collect();
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(
        decoder: &mut Decoder,
        block: &[u8],
    ) -> Result<Vec<(String, String)>, CompressionError> {
        let mut fields = Vec::new();
        decoder.decode(block, |name, value| {
            fields.push((
                String::from_utf8_lossy(name).into_owned(),
                String::from_utf8_lossy(value).into_owned(),
            ))
        })?;
        Ok(fields)
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn decodes_the_rfc_request_examples_with_and_without_huffman() {
        // RFC 7541 Appendix C.3 (raw) and C.4 (Huffman): three requests on one connection.
        let first = pairs(&[
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            (":authority", "www.example.com"),
        ]);
        let mut second = first.clone();
        second.push(("cache-control".into(), "no-cache".into()));
        let third = pairs(&[
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/index.html"),
            (":authority", "www.example.com"),
            ("custom-key", "custom-value"),
        ]);
        for blocks in [
            [
                "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
                "8286 84be 5808 6e6f 2d63 6163 6865",
                "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
            ],
            [
                "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
                "8286 84be 5886 a8eb 1064 9cbf",
                "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
            ],
        ] {
            let mut decoder = Decoder::default();
            assert_eq!(decode(&mut decoder, &hex(blocks[0])).unwrap(), first);
            assert_eq!(decode(&mut decoder, &hex(blocks[1])).unwrap(), second);
            assert_eq!(decode(&mut decoder, &hex(blocks[2])).unwrap(), third);
        }
    }

    #[test]
    fn evicts_as_the_rfc_response_examples_do() {
        // RFC 7541 Appendix C.5: responses with a 256-byte table, so entries are evicted.
        let mut decoder = Decoder::default();
        assert!(decoder.table.resize(256));
        let blocks = [
            "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 \
             2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 \
             6c65 2e63 6f6d",
            "4803 3330 37c1 c0bf",
            "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d \
             54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 \
             5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e \
             3d31",
        ];
        let date = |s| {
            (
                "date".to_string(),
                format!("Mon, 21 Oct 2013 20:13:{s} GMT"),
            )
        };
        let location = (
            "location".to_string(),
            "https://www.example.com".to_string(),
        );
        let first = decode(&mut decoder, &hex(blocks[0])).unwrap();
        assert_eq!(first[0], (":status".into(), "302".into()));
        assert_eq!(first[2], date("21"));
        let second = decode(&mut decoder, &hex(blocks[1])).unwrap();
        assert_eq!(second[0], (":status".into(), "307".into()));
        assert_eq!(second[3], location);
        let third = decode(&mut decoder, &hex(blocks[2])).unwrap();
        assert_eq!(third[0], (":status".into(), "200".into()));
        assert_eq!(third[2], date("22"));
        assert_eq!(third[5].0, "set-cookie");
        // "cache-control: private" was evicted by then: the table holds the three newest.
        assert_eq!(decoder.table.get(3).unwrap().0, b"date");
        assert!(decoder.table.get(4).is_none());
    }

    #[test]
    fn refuses_what_rfc_7541_calls_a_decoding_error() {
        let mut decoder = Decoder::default();
        for block in [
            &[0x80][..],                     // index 0
            &[0xbe],                         // past an empty dynamic table
            &[0x82, 0x20],                   // a size update after a field
            &[0x3f, 0xe2, 0x1f],             // a size update above 4096
            &[0x04, 0x05, b'a'],             // a value longer than the block
            &[0x0f, 0xff, 0xff, 0xff, 0xff], // an integer that never ends
            &[0x00, 0x81, 0x18, 0x00],       // a Huffman name padded with zeros
        ] {
            assert!(decode(&mut decoder, block).is_err(), "{block:02x?}");
        }
    }

    #[test]
    fn what_is_encoded_decodes_to_the_same_fields() {
        let fields = pairs(&[
            (":status", "200"),
            (":status", "418"),
            ("content-type", "application/grpc"),
            ("grpc-status", "0"),
            ("x-long", &"v".repeat(300)),
            ("accept-encoding", "gzip, deflate"),
        ]);
        let mut block = Vec::new();
        for (name, value) in &fields {
            encode_field(&mut block, name.as_bytes(), value.as_bytes());
        }
        assert_eq!(block[0], 0x88, ":status 200 is one byte");
        assert_eq!(decode(&mut Decoder::default(), &block).unwrap(), fields);
    }
}
