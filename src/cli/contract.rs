//! `statuscope contract diff` (a declared contract against an observed one) and `statuscope
//! contract merge` (several observed ones into one).

use std::path::{Path, PathBuf};

use super::Exit;
use crate::config::{self, FlagValues};
use crate::contract::drift::{self, DriftFormat, DriftLevel};
use crate::contract::Contract;
use crate::record::observed::{DocumentFormat, Learnt};

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
    /// Merge observed contracts (several replicas', or several runs') into one, with the same
    /// merge live learning uses: counts add, a property or header stays required only where
    /// every document had it, the latest "last seen" wins.
    Merge {
        /// Observed OpenAPI documents statuscope wrote (`/contract/observed`, `lint --observed`).
        #[arg(required = true)]
        documents: Vec<PathBuf>,
        /// Where to write the merged document (JSON for a `.json` name, else YAML); standard
        /// output when absent, as YAML.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

pub(super) fn execute(command: ContractCommand) -> u8 {
    match command {
        ContractCommand::Diff {
            declared,
            observed,
            format,
            fail_on,
        } => diff(&declared, &observed, format, fail_on),
        ContractCommand::Merge { documents, output } => {
            match merge(&documents, output.as_deref()) {
                Ok(()) => Exit::Clean.code(),
                Err(e) => Exit::Unusable.because(&e),
            }
        }
    }
}

fn diff(declared: &Path, observed: &Path, format: DriftFormat, fail_on: DriftLevel) -> u8 {
    let declared = match Contract::load(declared) {
        Ok(contract) => contract,
        Err(e) => return Exit::Unusable.because(&e),
    };
    let observed = match read_document(observed) {
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

/// Merges `documents` into `output` (standard output when `None`), within the limits the
/// configuration (defaults and environment) sets.
fn merge(documents: &[PathBuf], output: Option<&Path>) -> Result<(), String> {
    let config = config::load(None, &FlagValues::default()).map_err(|e| e.to_string())?;
    let limits = config
        .config
        .observed
        .ok_or("observed.enabled is off: a merge keeps to the observed.* limits it turns on")?;
    let mut merged = Learnt::default();
    for path in documents {
        let document = read_document(path)?;
        let learnt = Learnt::from_openapi(&document, &limits)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        merged.merge(&learnt, &limits);
    }
    match output {
        Some(path) => {
            let (text, _) = merged.render("observed", DocumentFormat::for_path(path));
            std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
        }
        None => {
            let (text, _) = merged.render("observed", DocumentFormat::Yaml);
            print!("{}", String::from_utf8_lossy(&text));
            Ok(())
        }
    }
}

/// An OpenAPI document as YAML or JSON (JSON is YAML).
fn read_document(path: &std::path::Path) -> Result<serde_json::Value, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_yaml::from_str(&text).map_err(|e| format!("{} is not YAML or JSON: {e}", path.display()))
}
