//! What a configuration key is: its path, its kind (type, built-in value, bounds), its meaning
//! and when a change applies; the table of every key is [`keys`](super::keys).

use super::Config;

/// One configuration key. The code reads a key through its constant here (`keys::THREADS`),
/// never through its path written again, so a mistyped key is a compile error; the kind says
/// how the value is read and checked, and what the reference prints.
pub struct Key {
    /// The dotted path as written in a file; a segment `<id>` stands for any one name.
    pub path: &'static str,
    /// What the key holds: its type, built-in value and bounds.
    pub kind: KeyKind,
    /// What the key controls, in Markdown, for the reference.
    pub meaning: &'static str,
    /// When a changed value takes effect.
    pub applies: Applies,
}

/// What a key holds, its built-in value and the bounds a value must keep. The loader feeds the
/// built-in value to the same parsing as a user's, validation reads the bounds, and the
/// reference prints both.
pub enum KeyKind {
    /// `host:port`, resolved once at start-up.
    Address(&'static str),
    /// A whole number from `low` to `high`.
    Count {
        /// The built-in value.
        default: i64,
        /// The least value accepted.
        low: i64,
        /// The greatest value accepted.
        high: i64,
    },
    /// A duration such as `500ms` or `2s`, or a number of seconds.
    Duration {
        /// The built-in value, as written.
        default: &'static str,
        /// `0` is refused.
        nonzero: bool,
    },
    /// A switch.
    Switch(bool),
    /// One of a few names.
    Choice {
        /// The built-in name.
        default: &'static str,
        /// Every name accepted.
        options: &'static [&'static str],
    },
    /// Free text with a check of its own (a log filter).
    Text(&'static str),
    /// A list of strings.
    List(&'static [&'static str]),
    /// A list of numbers.
    Numbers(&'static [f64]),
    /// A value with no built-in one; the text says what its absence means.
    Optional(&'static str),
    /// A list of tables, in the file only; none by default.
    Entries,
}

/// The greatest value of a count with no bound of its own.
pub const MAX_COUNT: i64 = i64::MAX;

impl KeyKind {
    pub(super) const fn count(default: i64, low: i64, high: i64) -> KeyKind {
        KeyKind::Count { default, low, high }
    }

    pub(super) const fn duration(default: &'static str) -> KeyKind {
        KeyKind::Duration {
            default,
            nonzero: false,
        }
    }

    pub(super) const fn nonzero_duration(default: &'static str) -> KeyKind {
        KeyKind::Duration {
            default,
            nonzero: true,
        }
    }

    pub(super) const fn choice(default: &'static str, options: &'static [&'static str]) -> KeyKind {
        KeyKind::Choice { default, options }
    }
}

/// The names of a choice's options (`NAMED` tables of the enums the choice keys hold).
pub(super) const fn names<T: Copy, const N: usize>(
    named: [(&'static str, T); N],
) -> [&'static str; N] {
    let mut out = [""; N];
    let mut i = 0;
    while i < N {
        out[i] = named[i].0;
        i += 1;
    }
    out
}

/// When a changed value takes effect.
pub enum Applies {
    /// At the next SIGHUP, for every request that starts afterwards.
    OnReload,
    /// Only at the next start; the function says whether two configurations agree on the key,
    /// so a reload can name the keys it could not apply.
    OnRestart(fn(&Config, &Config) -> bool),
}

/// Defines a key's constant, its doc comment being the key's meaning as the reference prints it.
macro_rules! define_key {
    ($name:ident, $path:literal, $kind:expr, $meaning:literal, $(restart: $same:expr,)?) => {
        #[doc = concat!("`", $path, "`: ", $meaning)]
        pub const $name: Key = Key {
            path: $path,
            kind: $kind,
            meaning: $meaning,
            applies: define_key!(@applies $($same)?),
        };
    };
    (@applies) => {
        Applies::OnReload
    };
    (@applies $same:expr) => {
        Applies::OnRestart($same)
    };
}

impl Key {
    /// Does `path` (a key as a source spelt it) name this key?
    pub fn matches(&self, path: &str) -> bool {
        segments_match(self.path, path, false)
    }

    /// Does this key continue below the table `path`?
    pub fn is_below(&self, path: &str) -> bool {
        path.is_empty() || segments_match(self.path, path, true)
    }

    /// The environment variable that sets the key: `STATUSCOPE_TIMEOUTS__CONNECT` for
    /// `timeouts.connect`.
    pub fn env_var(&self) -> String {
        format!(
            "{}_{}",
            super::ENV_PREFIX,
            self.path.replace('.', "__").to_uppercase()
        )
    }

    /// `true` for a key with a `<name>` segment, which names a family of keys.
    pub fn is_pattern(&self) -> bool {
        self.path.contains('<')
    }

    /// The table a key family lives in: `rules` for `rules.<id>.enabled`.
    pub fn table(&self) -> &'static str {
        self.path
            .split_once(".<")
            .map_or(self.path, |(table, _)| table)
    }
}

fn segments_match(known: &str, path: &str, prefix_only: bool) -> bool {
    let mut known = known.split('.');
    for part in path.split('.') {
        match known.next() {
            Some(k) if k.starts_with('<') || k == part => {}
            _ => return false,
        }
    }
    known.next().is_some() == prefix_only
}

pub(super) use define_key;
