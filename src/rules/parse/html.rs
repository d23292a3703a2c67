//! Finds an HTML page's `<title>` and first `<h1>`, as far as a body sample goes.

use super::find_ignore_case;

/// The page's title and first top-level heading, tags stripped and whitespace collapsed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Headline {
    /// The `<title>` text.
    pub title: Option<String>,
    /// The first `<h1>` text.
    pub heading: Option<String>,
}

/// Extracts the title and first heading from `html`.
pub fn headline(html: &[u8]) -> Headline {
    Headline {
        title: element_text(html, b"<title", b"</title"),
        heading: element_text(html, b"<h1", b"</h1"),
    }
}

fn element_text(html: &[u8], open: &[u8], close: &[u8]) -> Option<String> {
    let start = find_ignore_case(html, open)?;
    // `<title>` but not `<titlebar>`: the tag name must end here.
    let after_name = html.get(start + open.len())?;
    if !matches!(after_name, b'>' | b' ' | b'\t' | b'\n' | b'\r') {
        return None;
    }
    let content_start = start + html[start..].iter().position(|b| *b == b'>')? + 1;
    let content_len = find_ignore_case(&html[content_start..], close)?;
    let text = strip_tags(&html[content_start..content_start + content_len]);
    (!text.is_empty()).then_some(text)
}

fn strip_tags(fragment: &[u8]) -> String {
    let mut text = String::with_capacity(fragment.len());
    let mut in_tag = false;
    let mut last_space = true;
    for c in String::from_utf8_lossy(fragment).chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            _ if in_tag => {}
            c if c.is_whitespace() => {
                if !last_space {
                    text.push(' ');
                    last_space = true;
                }
            }
            c => {
                text.push(c);
                last_space = false;
            }
        }
    }
    text.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_and_heading_are_extracted() {
        let page = b"<!doctype html><HTML><head><Title>\n  Page  Not Found\n</TITLE></head><body><h1 class=x>Oops: <em>404</em></h1><h1>second</h1>";
        let found = headline(page);
        assert_eq!(found.title.as_deref(), Some("Page Not Found"));
        assert_eq!(found.heading.as_deref(), Some("Oops: 404"));
    }

    #[test]
    fn missing_or_cut_elements_are_none() {
        assert_eq!(headline(b"<html><body>plain</body>"), Headline::default());
        assert_eq!(headline(b"<title>cut off"), Headline::default());
        assert_eq!(headline(b"<titlebar>x</titlebar>").title, None);
    }
}
