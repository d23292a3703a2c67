//! Redaction of anything that may be a secret or personal data, applied to every path and
//! piece of evidence before it is stored for `/findings` or logged.

use std::sync::LazyLock;

use regex::{Captures, Regex};

/// Longest evidence kept, in characters.
pub const MAX_EVIDENCE_CHARS: usize = 200;

const REDACTED: &str = "[redacted]";

struct Pattern {
    regex: Regex,
    /// Capture group kept in front of the redaction (a field name, a scheme), if any.
    keep: Option<usize>,
}

static PATTERNS: LazyLock<Vec<Pattern>> = LazyLock::new(|| {
    let pattern = |regex: &str, keep| Pattern {
        regex: Regex::new(regex).expect("valid redaction pattern"),
        keep,
    };
    vec![
        // JSON Web Tokens, wherever they appear.
        pattern(
            r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*",
            None,
        ),
        // Credentials after an authentication scheme.
        pattern(
            r"(?i)\b((?:bearer|basic|digest|token)\s+)[A-Za-z0-9._~+/=-]{6,}",
            Some(1),
        ),
        // Values of fields whose names say they are secret, in JSON, forms, headers or prose.
        pattern(
            r#"(?i)(["']?\b(?:password|passwd|pwd|pass|secret|client_secret|token|access_token|refresh_token|id_token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|auth|authorization|cookie|set-cookie|session|session_?id|sid|credentials?)["']?\s*[:=]\s*)("(?:[^"\\]|\\.)*"|'[^']*'|[^\s,;&}\]]+)"#,
            Some(1),
        ),
        // Well-known API key shapes (Stripe, AWS, GitHub, Slack, Google).
        pattern(
            r"\b(?:(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{8,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{20,}|xox[abpr]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{30,})",
            None,
        ),
        // E-mail addresses.
        pattern(
            r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
            None,
        ),
    ]
});

/// Long opaque runs of letters and digits (hashes, keys, session ids); UUIDs are kept.
static OPAQUE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[A-Za-z0-9_+=-]{32,}").expect("valid pattern"));

fn is_uuid(text: &str) -> bool {
    text.len() == 36
        && text.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// Replaces secrets and personal data in `text` with `[redacted]`.
pub fn redact(text: &str) -> String {
    let mut text = text.to_string();
    for pattern in PATTERNS.iter() {
        if pattern.regex.is_match(&text) {
            text = pattern
                .regex
                .replace_all(&text, |caps: &Captures<'_>| match pattern.keep {
                    Some(group) => format!("{}{REDACTED}", &caps[group]),
                    None => REDACTED.to_string(),
                })
                .into_owned();
        }
    }
    OPAQUE
        .replace_all(&text, |caps: &Captures<'_>| {
            let run = &caps[0];
            let mixed = run.bytes().any(|b| b.is_ascii_digit())
                && run.bytes().any(|b| b.is_ascii_alphabetic());
            if mixed && !is_uuid(run) {
                REDACTED.to_string()
            } else {
                run.to_string()
            }
        })
        .into_owned()
}

/// [`redact`], then clipped to [`MAX_EVIDENCE_CHARS`].
pub fn evidence(text: &str) -> String {
    let redacted = redact(text);
    if redacted.chars().count() <= MAX_EVIDENCE_CHARS {
        return redacted;
    }
    let mut clipped: String = redacted.chars().take(MAX_EVIDENCE_CHARS - 1).collect();
    clipped.push('…');
    clipped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_personal_data_are_redacted() {
        let cases = [
            ("Authorization: Bearer abcdef123456789", "abcdef123456789"),
            (
                "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig-nature_x",
                "eyJzdWIiOiIxMjM0In0",
            ),
            (r#"{"password": "hunter2", "user": "bob"}"#, "hunter2"),
            ("password=hunter2&user=bob", "hunter2"),
            ("api_key: 12345-abcde", "12345-abcde"),
            (r#"{"apiKey":"k-123"}"#, "k-123"),
            (
                "key sk_live_4eC39HqLyjWDarjtT1zdp7dc leaked",
                "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
            ),
            ("aws AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
            (
                "contact alice.smith@example.co.uk now",
                "alice.smith@example.co.uk",
            ),
            ("Cookie: session=s3cr3t-value; theme=dark", "s3cr3t-value"),
            ("set-cookie: sid=abc123xyz", "abc123xyz"),
            (
                "/reset/9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                "9f86d081884c7d659a2feaa0c55ad015",
            ),
        ];
        for (text, secret) in cases {
            let redacted = redact(text);
            assert!(!redacted.contains(secret), "{text} → {redacted}");
            assert!(redacted.contains("[redacted]"), "{text} → {redacted}");
        }
    }

    #[test]
    fn ordinary_evidence_is_kept() {
        for text in [
            "429 without Retry-After",
            "/users/3f2c1a9e-4b7d-4e8a-9c1b-2d3e4f5a6b7c/orders",
            r#"200 answered with top-level "error": "User ID 999 not found""#,
            "a Java stack frame: at com.example.UserService.find(UserService.java:42)",
        ] {
            assert_eq!(redact(text), text);
        }
    }

    #[test]
    fn evidence_is_clipped() {
        let long = "x ".repeat(300);
        let clipped = evidence(&long);
        assert_eq!(clipped.chars().count(), MAX_EVIDENCE_CHARS);
        assert!(clipped.ends_with('…'));
    }
}
