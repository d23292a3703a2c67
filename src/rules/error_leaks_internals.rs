//! `error-leaks-internals`: a body that shows the service's insides.

use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use regex::bytes::{Regex, RegexSet};

use super::{Exchange, Rule, RuleKind, Severity, Verdict};

/// Flags a body that shows the service's insides.
pub static RULE: Rule = Rule {
    id: "error-leaks-internals",
    kind: RuleKind::Http,
    title: "Stack trace or internal error text in a body",
    severity: Severity::Error,
    fires_when: "any response body carrying a stack trace or internal error text: Python tracebacks, \
                 Java/.NET/Node stack frames, Go goroutine dumps, Rust panics, SQL error texts (SQLSTATE, \
                 ORA-, \"syntax error at or near\")",
    rationale: "The guide's §6.1: log the details of an unhandled exception, don't send them. Stack frames \
                and SQL errors reveal file layout, library versions and queries to anyone, and help \
                attackers (OWASP: improper error handling).",
    evaluate,
};

/// What each pattern reveals, in the order of [`PATTERNS`].
const KINDS: &[&str] = &[
    "a Python traceback",
    "a Python stack frame",
    "a Java stack frame",
    "a Java exception",
    "a .NET stack frame",
    "a .NET stack trace marker",
    "a Node.js stack frame",
    "a Go goroutine dump",
    "a Go runtime panic",
    "a Rust panic",
    "a PHP error location",
    "a Ruby stack frame",
    "an SQLSTATE code",
    "an Oracle error code",
    "a PostgreSQL syntax error",
    "a MySQL syntax error",
    "a database driver error",
];

const PATTERNS: &[&str] = &[
    r"Traceback \(most recent call last\)",
    r#"File "[^"\n]+", line \d+, in "#,
    r"\bat [\w$]+(?:\.[\w$<>]+)+\([\w$]+\.java:\d+\)",
    r#"Exception in thread "|\bjava\.(?:lang|io|sql|util)\.[A-Z]\w*(?:Exception|Error)\b"#,
    r"\bat [\w.<>`\[\]]+\([^)\n]*\) in [^\n]+:line \d+",
    r"--- End of (?:inner exception )?stack trace|\bSystem\.[A-Z]\w*Exception\b",
    r"\bat (?:async )?[\w$.<>\[\] ]+ \((?:/|[A-Za-z]:\\|node:|file://)[^)\n]+:\d+:\d+\)",
    r"goroutine \d+ \[[a-z ]+\]:",
    r"panic: runtime error:",
    r"thread '[^'\n]+' panicked at",
    r"(?:Fatal error|Warning|Parse error): .+ in /[^\n]+\.php on line \d+",
    r"from /[^\n]+\.rb:\d+:in `",
    r"SQLSTATE\[|\bSQLSTATE[ =:]+[0-9A-Z]{5}\b",
    r"\bORA-\d{5}\b",
    r"syntax error at or near",
    r"You have an error in your SQL syntax",
    r"\bpsycopg2\.errors\.|\bPG::[A-Z]\w*Error\b|\bsqlite3\.OperationalError\b|\bSQLException\b",
];

// ASCII classes (`(?-u)`) keep the automata small: stack traces are ASCII where it matters.
/// Literals at least one of which every pattern contains: a fast scan for them spares the
/// regular expressions almost every body, which mentions none.
const TRIGGERS: &[&str] = &[
    // Each starts with an uncommon three bytes: the SIMD prefilter then rarely stops on
    // ordinary text (a literal starting with a space would stop it at every word).
    "Traceback",
    "File \"",
    ".java:",
    "Exception",
    "java.",
    ":line ",
    "--- End of",
    "System.",
    "js:",
    "ts:",
    "node:",
    "goroutine ",
    "panic: runtime error",
    "panicked at",
    ".php on line",
    ".rb:",
    "SQL",
    "ORA-",
    "syntax error at or near",
    "psycopg2.errors.",
    "PG::",
    "sqlite3.OperationalError",
];

static TRIGGER: LazyLock<AhoCorasick> = LazyLock::new(|| {
    // Leftmost-first lets the crate use its SIMD (Teddy) prefilter for this few literals.
    AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostFirst)
        .kind(Some(AhoCorasickKind::DFA))
        .build(TRIGGERS)
        .expect("valid literals")
});

static SET: LazyLock<RegexSet> = LazyLock::new(|| {
    RegexSet::new(PATTERNS.iter().map(|p| format!("(?-u){p}"))).expect("valid patterns")
});
static EACH: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    PATTERNS
        .iter()
        .map(|p| Regex::new(&format!("(?-u){p}")).expect("valid pattern"))
        .collect()
});

/// Names what the body leaks and quotes it, or `None` when it looks clean.
pub fn detect(body: &[u8]) -> Option<String> {
    // Run the expressions only on a window around each literal hit, never on the whole body.
    let mut from = 0;
    for _ in 0..MAX_WINDOWS {
        let hit = TRIGGER.find(&body[from..])?;
        let start = (from + hit.start()).saturating_sub(WINDOW);
        let end = (from + hit.end() + WINDOW).min(body.len());
        if let Some(leak) = describe(&body[start..end]) {
            return Some(leak);
        }
        from += hit.end();
    }
    None
}

/// How far before and after a literal hit a leak's text may reach.
const WINDOW: usize = 320;
/// Literal hits examined per body, bounding the cost of a body full of false hits.
const MAX_WINDOWS: usize = 16;

fn describe(window: &[u8]) -> Option<String> {
    let index = SET.matches(window).into_iter().next()?;
    let found = EACH[index].find(window)?;
    let quoted: String = String::from_utf8_lossy(found.as_bytes())
        .chars()
        .take(100)
        .collect();
    Some(format!("{}: {quoted}", KINDS[index]))
}

fn evaluate(exchange: &Exchange<'_>) -> Option<Verdict> {
    let body = exchange.body?;
    let leak = detect(&body.bytes)?;
    Some(Verdict::new(
        Severity::Error,
        format!("{} body shows {leak}", exchange.status),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::case;

    #[test]
    fn every_pattern_has_a_name() {
        assert_eq!(KINDS.len(), PATTERNS.len());
    }

    /// One leak of each kind, in the order of `PATTERNS`.
    const LEAKS: &[&str] = &[
        "Traceback (most recent call last):\n  File \"/app/main.py\", line 12, in handler\nKeyError: 'id'",
        "  File \"/app/main.py\", line 12, in handler",
        "java.lang.NullPointerException\n\tat com.example.UserService.find(UserService.java:42)",
        "Exception in thread \"main\" java.lang.IllegalStateException: boom",
        "   at Shop.Api.Orders.Get(Int32 id) in C:\\src\\Orders.cs:line 30",
        "--- End of stack trace from previous location ---",
        "TypeError: x is undefined\n    at Object.<anonymous> (/srv/app/index.js:10:15)",
        "goroutine 1 [running]:\nmain.main()\n\t/app/main.go:8",
        "panic: runtime error: index out of range [3] with length 3",
        "thread 'tokio-runtime-worker' panicked at src/main.rs:5:9",
        "Fatal error: Uncaught Exception: boom in /var/www/index.php on line 7",
        "from /app/models/user.rb:12:in `find'",
        r#"{"error": "SQLSTATE[42S02]: Base table or view not found"}"#,
        r#"{"message": "ORA-00942: table or view does not exist"}"#,
        r#"{"error": "ERROR: syntax error at or near \"FROM\""}"#,
        "You have an error in your SQL syntax; check the manual",
        "psycopg2.errors.UndefinedTable: relation \"users\" does not exist",
    ];

    #[test]
    fn fires_on_every_kind_of_leak() {
        assert_eq!(LEAKS.len(), PATTERNS.len());
        for (index, leak) in LEAKS.iter().enumerate() {
            assert!(case(500).body("text/plain", leak).fires(&RULE), "{leak}");
            // Each pattern is reachable: the literal prefilter lets its example through.
            assert!(
                TRIGGER.is_match(leak.as_bytes()),
                "no trigger for pattern {index}"
            );
            assert!(
                SET.matches(leak.as_bytes()).matched(index),
                "pattern {index} misses {leak}"
            );
        }
    }

    #[test]
    fn quiet_on_ordinary_errors_and_prose() {
        for body in [
            r#"{"code": "INTERNAL", "details": ["database unavailable"]}"#,
            "Please try again at 10:30 (in a few minutes).",
            "The meeting is at the office (Main St. 3).",
            r#"{"note": "see the syntax guide", "status": "ORA-12"}"#,
        ] {
            assert!(!case(500).body("text/plain", body).fires(&RULE), "{body}");
        }
    }
}
