//! Configuration errors: each names the key, the source its value came from and the problem;
//! a load reports every one it finds, not only the first.

use std::fmt;

/// One problem with one key (or with the configuration as a whole, when `key` is `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The key as a user writes it in a file (`timeouts.connect`, `route_rules[0].disable`).
    pub key: Option<String>,
    /// Where the offending value came from: a file's path, `the environment`, `a command-line
    /// flag` or `the built-in default`.
    pub source: String,
    /// What is wrong, and what would be right.
    pub problem: String,
}

impl ConfigError {
    /// A problem with `key`, whose value came from `source`.
    pub fn at(key: &str, source: impl Into<String>, problem: impl fmt::Display) -> Self {
        ConfigError {
            key: Some(key.to_string()),
            source: source.into(),
            problem: problem.to_string(),
        }
    }

    /// A problem with a whole source, such as a file that does not parse.
    pub fn whole(source: impl Into<String>, problem: impl fmt::Display) -> Self {
        ConfigError {
            key: None,
            source: source.into(),
            problem: problem.to_string(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(
                f,
                "configuration key `{key}` (from {}): {}",
                self.source, self.problem
            ),
            None => write!(f, "configuration ({}): {}", self.source, self.problem),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Every problem a load found, in the order of the key table; never empty. Displayed one per
/// line, so the command line can prefix each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The problems, in the order found.
    pub fn iter(&self) -> impl Iterator<Item = &ConfigError> {
        self.0.iter()
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> Self {
        ConfigErrors(vec![error])
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}
