//! `statuscope contract diff`: a declared contract against an observed one.

use std::path::PathBuf;

use super::Exit;
use crate::contract::drift::{self, DriftFormat, DriftLevel};
use crate::contract::Contract;

/// `contract`'s subcommands.
#[derive(clap::Subcommand)]
pub(super) enum ContractCommand {
    /// List what the observed contract shows that the declared one does not say (undeclared
    /// routes, operations, codes, media types) and what the declared one says that was never
    /// observed (unseen operations and codes).
    ///
    /// Exit status: 0 when no difference reaches --fail-on, 1 when one does, 2 when a
    /// document cannot be read.
    Diff {
        /// The declared OpenAPI document (the service's `contract.openapi`).
        declared: PathBuf,
        /// The observed one (`/contract/observed`, `statuscope lint --observed`).
        observed: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: DriftFormat,
        /// The least level that fails the run: error (seen, undeclared), warning (an
        /// undeclared media type) or info (declared, never seen).
        #[arg(long, value_enum, default_value = "error")]
        fail_on: DriftLevel,
    },
}

pub(super) fn execute(command: ContractCommand) -> u8 {
    let ContractCommand::Diff {
        declared,
        observed,
        format,
        fail_on,
    } = command;
    let declared = match Contract::load(&declared) {
        Ok(contract) => contract,
        Err(e) => return Exit::Unusable.because(&e),
    };
    let observed = match read_document(&observed) {
        Ok(document) => document,
        Err(e) => return Exit::Unusable.because(&e),
    };
    let differences = drift::diff(&declared, &observed);
    print!("{}", drift::render(&differences, format));
    if differences.iter().any(|d| d.level >= fail_on) {
        Exit::Failed.code()
    } else {
        Exit::Clean.code()
    }
}

/// An OpenAPI document as YAML or JSON (JSON is YAML).
fn read_document(path: &std::path::Path) -> Result<serde_json::Value, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_yaml::from_str(&text).map_err(|e| format!("{} is not YAML or JSON: {e}", path.display()))
}
