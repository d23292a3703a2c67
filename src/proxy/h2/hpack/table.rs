//! HPACK's tables (RFC 7541 §2.3): the static table every endpoint knows, and the dynamic
//! table a decoder keeps for its peer's encoder, bounded by the size it allowed.

use std::collections::VecDeque;

/// RFC 7541 Appendix A, index 1 first.
pub const STATIC: [(&[u8], &[u8]); 61] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];

/// The static index of the first entry named `name`, for a literal with an indexed name. (A
/// `match` on byte strings compiles to a dispatch on length, then one comparison: every field
/// statuscope writes asks.)
pub fn static_name_index(name: &[u8]) -> Option<usize> {
    let index = match name {
        b":authority" => 1,
        b":method" => 2,
        b":path" => 4,
        b":scheme" => 6,
        b":status" => 8,
        b"accept-charset" => 15,
        b"accept-encoding" => 16,
        b"accept-language" => 17,
        b"accept-ranges" => 18,
        b"accept" => 19,
        b"access-control-allow-origin" => 20,
        b"age" => 21,
        b"allow" => 22,
        b"authorization" => 23,
        b"cache-control" => 24,
        b"content-disposition" => 25,
        b"content-encoding" => 26,
        b"content-language" => 27,
        b"content-length" => 28,
        b"content-location" => 29,
        b"content-range" => 30,
        b"content-type" => 31,
        b"cookie" => 32,
        b"date" => 33,
        b"etag" => 34,
        b"expect" => 35,
        b"expires" => 36,
        b"from" => 37,
        b"host" => 38,
        b"if-match" => 39,
        b"if-modified-since" => 40,
        b"if-none-match" => 41,
        b"if-range" => 42,
        b"if-unmodified-since" => 43,
        b"last-modified" => 44,
        b"link" => 45,
        b"location" => 46,
        b"max-forwards" => 47,
        b"proxy-authenticate" => 48,
        b"proxy-authorization" => 49,
        b"range" => 50,
        b"referer" => 51,
        b"refresh" => 52,
        b"retry-after" => 53,
        b"server" => 54,
        b"set-cookie" => 55,
        b"strict-transport-security" => 56,
        b"transfer-encoding" => 57,
        b"user-agent" => 58,
        b"vary" => 59,
        b"via" => 60,
        b"www-authenticate" => 61,
        _ => return None,
    };
    Some(index)
}

/// The static index of the exact field, for the few whole fields the static table holds.
pub fn static_field_index(name: &[u8], value: &[u8]) -> Option<usize> {
    let index = match (name, value) {
        (b":method", b"GET") => 2,
        (b":method", b"POST") => 3,
        (b":path", b"/") => 4,
        (b":scheme", b"http") => 6,
        (b":scheme", b"https") => 7,
        (b":status", b"200") => 8,
        (b":status", b"204") => 9,
        (b":status", b"206") => 10,
        (b":status", b"304") => 11,
        (b":status", b"400") => 12,
        (b":status", b"404") => 13,
        (b":status", b"500") => 14,
        _ => return None,
    };
    Some(index)
}

/// The per-entry overhead RFC 7541 §4.1 counts in a table's size.
pub const ENTRY_OVERHEAD: usize = 32;

/// A decoder's dynamic table: the newest entry first, evicted from the oldest end.
#[derive(Debug)]
pub struct DynamicTable {
    /// Each entry's name and value in one allocation, and where the name ends.
    entries: VecDeque<(Box<[u8]>, usize)>,
    /// Their size by RFC 7541 §4.1.
    size: usize,
    /// The size the encoder last set, at most `limit`.
    max_size: usize,
    /// The most this decoder allows (its SETTINGS_HEADER_TABLE_SIZE).
    limit: usize,
}

impl DynamicTable {
    /// An empty table that allows at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        DynamicTable {
            entries: VecDeque::new(),
            size: 0,
            max_size: limit,
            limit,
        }
    }

    /// Applies a dynamic table size update; `false` when it exceeds the limit.
    pub fn resize(&mut self, max_size: usize) -> bool {
        if max_size > self.limit {
            return false;
        }
        self.max_size = max_size;
        self.evict_to(max_size);
        true
    }

    /// Adds an entry, evicting the oldest as needed; one larger than the table empties it.
    pub fn insert(&mut self, name: &[u8], value: &[u8]) {
        let size = name.len() + value.len() + ENTRY_OVERHEAD;
        if size > self.max_size {
            self.entries.clear();
            self.size = 0;
            return;
        }
        self.evict_to(self.max_size - size);
        let mut bytes = Vec::with_capacity(name.len() + value.len());
        bytes.extend_from_slice(name);
        bytes.extend_from_slice(value);
        self.entries
            .push_front((bytes.into_boxed_slice(), name.len()));
        self.size += size;
    }

    /// The entry at `index` counted from 1 for the newest.
    pub fn get(&self, index: usize) -> Option<(&[u8], &[u8])> {
        let (bytes, name_len) = self.entries.get(index.checked_sub(1)?)?;
        Some(bytes.split_at(*name_len))
    }

    fn evict_to(&mut self, size: usize) {
        while self.size > size {
            let Some((bytes, _)) = self.entries.pop_back() else {
                break;
            };
            self.size -= bytes.len() + ENTRY_OVERHEAD;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_index_is_the_first_entry_of_each_name() {
        for (name, _) in STATIC {
            let first = STATIC.iter().position(|(n, _)| *n == name).unwrap() + 1;
            assert_eq!(
                static_name_index(name),
                Some(first),
                "{}",
                String::from_utf8_lossy(name)
            );
        }
        assert_eq!(static_name_index(b"grpc-status"), None);
    }
}
