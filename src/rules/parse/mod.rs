//! Small, allocation-free parsers the rules share: a lenient top-level JSON scanner, an HTML
//! title and heading extractor, and parsers of the headers the rules read.

pub mod headers;
pub mod html;
pub mod json;

/// The first position of `needle` in `haystack`, ignoring ASCII case.
pub fn find_ignore_case(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > haystack.len() {
        return None;
    }
    let first = needle[0].to_ascii_lowercase();
    (0..=haystack.len() - needle.len()).find(|&i| {
        haystack[i].to_ascii_lowercase() == first
            && haystack[i..i + needle.len()].eq_ignore_ascii_case(needle)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_regardless_of_case() {
        assert_eq!(find_ignore_case(b"abc<TITLE>", b"<title"), Some(3));
        assert_eq!(find_ignore_case(b"abc", b"abcd"), None);
        assert_eq!(find_ignore_case(b"abc", b""), None);
    }
}
