//! `statuscope rules` and `statuscope reference`: the references generated from the code.

use super::Exit;
use crate::rules::describe;
use crate::{admin, config, inject, injector, lifecycle};

/// The references `statuscope reference` prints, each the whole of a file in `docs/`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub(super) enum Topic {
    /// Every configuration key (docs/configuration.md).
    Configuration,
    /// Every metric family, with its type, labels and help (docs/metrics.md).
    Metrics,
    /// The misuse rules (docs/rules.md).
    Rules,
    /// The pod annotations `inject` and `injector` read (docs/annotations.md).
    Annotations,
    /// The answers statuscope makes itself instead of the service (docs/answers.md).
    Answers,
    /// Every subcommand and its flags (docs/cli.md).
    Cli,
}

/// The text of `topic`'s reference.
fn text(topic: Topic) -> String {
    match topic {
        Topic::Configuration => config::reference::reference_markdown(),
        Topic::Metrics => admin::reference::markdown(
            &lifecycle::registered_families(),
            &injector::registered_families(),
        ),
        Topic::Rules => describe::markdown(),
        Topic::Annotations => inject::overrides::reference_markdown(),
        Topic::Answers => crate::proxy::error_response::reference_markdown(),
        Topic::Cli => super::reference_markdown(),
    }
}

pub(super) fn print(topic: Topic) -> u8 {
    print!("{}", text(topic));
    Exit::Clean.code()
}

pub(super) fn rules(json: bool, markdown: bool) -> u8 {
    let text = if json {
        describe::json()
    } else if markdown {
        describe::markdown()
    } else {
        describe::table()
    };
    print!("{text}");
    Exit::Clean.code()
}

#[cfg(test)]
mod tests {
    use clap::ValueEnum;

    use super::*;

    #[test]
    fn every_reference_in_docs_is_what_the_code_generates() {
        for topic in Topic::value_variants() {
            let name = topic.to_possible_value().unwrap().get_name().to_string();
            let path = format!("{}/docs/{name}.md", env!("CARGO_MANIFEST_DIR"));
            let committed = std::fs::read_to_string(&path).unwrap();
            assert!(
                committed == text(*topic),
                "docs/{name}.md is stale: run `make docs`"
            );
        }
    }
}
