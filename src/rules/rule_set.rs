//! The rule set: the catalogue as configured (rules switched on or off, severities
//! overridden, per-route exceptions), run over one exchange with every rule isolated, so a
//! panicking rule costs only its own verdict.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use prometheus::IntCounterVec;

use super::{Exchange, Rule, RuleKind, Severity, CATALOGUE};
use crate::classify::route::PROBE_ROUTE;
use crate::contract::Contract;
use crate::families::Families;

/// The engine's family: rules that panicked instead of judging.
pub struct RuleSetMetrics {
    panics: IntCounterVec,
}

impl RuleSetMetrics {
    /// Registers `statuscope_rule_panics_total`, every rule at 0 so an alert can use `rate()`.
    pub fn register(families: &Families) -> Self {
        let panics = families.counter_vec(
            "statuscope_rule_panics_total",
            "Rule evaluations that panicked, by rule; the exchange and the other rules are unaffected.",
            &["rule"],
        );
        for rule in CATALOGUE {
            panics.with_label_values(&[rule.id]);
        }
        RuleSetMetrics { panics }
    }

    /// Counts one panic of the rule at `index` in the catalogue.
    pub fn record_panic(&self, index: usize) {
        self.panics.with_label_values(&[CATALOGUE[index].id]).inc();
    }
}

/// How one rule is configured (`rules.<id>.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleSetting {
    /// Index of the rule in [`CATALOGUE`].
    pub rule: usize,
    /// `rules.<id>.enabled`
    pub enabled: bool,
    /// `rules.<id>.severity`
    pub severity: Option<Severity>,
}

/// Exceptions for one route (`route_rules[]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRules {
    /// The route label the exceptions apply to.
    pub route: String,
    /// Indices of the rules switched off on this route.
    pub disabled: Vec<usize>,
    /// Fields that also make an error body structured on this route.
    pub error_fields: Vec<String>,
}

/// A rule's verdict on one exchange, after configuration.
#[derive(Debug, Clone)]
pub struct Finding {
    /// The rule that fired.
    pub rule: &'static Rule,
    /// Its index in [`CATALOGUE`].
    pub index: usize,
    /// The severity, after any override.
    pub severity: Severity,
    /// What was seen.
    pub evidence: String,
}

/// What evaluating one rule produced.
#[derive(Debug)]
pub enum Evaluation {
    /// The rule fired.
    Finding(Finding),
    /// The rule panicked; the exchange is otherwise unaffected.
    Panicked {
        /// The rule's index in [`CATALOGUE`].
        index: usize,
    },
}

struct Active {
    index: usize,
    rule: &'static Rule,
    severity: Option<Severity>,
}

struct RouteException {
    disabled: u64,
    fields: Vec<String>,
}

/// The catalogue as configured: the rules switched on with their severities, the error
/// fields, and the per-route exceptions, looked up once per exchange.
pub struct RuleSet {
    active: Vec<Active>,
    /// The catalogue indices of the gRPC rules, as bits: the rules of gRPC calls.
    grpc_rules: u64,
    fields: Vec<String>,
    routes: HashMap<String, RouteException>,
    contract: Option<Arc<Contract>>,
}

impl RuleSet {
    /// Builds the engine from the rules' settings, the default error fields, route exceptions
    /// and the service's contract, if it has one.
    pub fn new(
        settings: &[RuleSetting],
        error_fields: &[String],
        route_rules: &[RouteRules],
        contract: Option<Arc<Contract>>,
    ) -> RuleSet {
        let active = CATALOGUE
            .iter()
            .enumerate()
            .filter_map(|(index, rule)| {
                let setting = settings.iter().find(|s| s.rule == index);
                // Without a contract the contract rules could only say nothing: skip them.
                let judgeable = contract.is_some() || rule.kind != RuleKind::Contract;
                let enabled = judgeable && setting.is_none_or(|s| s.enabled);
                enabled.then(|| Active {
                    index,
                    rule,
                    severity: setting.and_then(|s| s.severity),
                })
            })
            .collect();
        let routes = route_rules
            .iter()
            .map(|exception| {
                let disabled = exception
                    .disabled
                    .iter()
                    .fold(0u64, |bits, index| bits | 1 << index);
                let mut fields = error_fields.to_vec();
                fields.extend(exception.error_fields.iter().cloned());
                (exception.route.clone(), RouteException { disabled, fields })
            })
            .collect();
        let grpc_rules = CATALOGUE
            .iter()
            .enumerate()
            .filter(|(_, rule)| rule.kind == RuleKind::Grpc)
            .fold(0u64, |bits, (index, _)| bits | 1 << index);
        RuleSet {
            active,
            grpc_rules,
            fields: error_fields.to_vec(),
            routes,
            contract,
        }
    }

    /// The contract the engine judges against, whose coverage its lookups count.
    pub fn contract(&self) -> Option<&Arc<Contract>> {
        self.contract.as_ref()
    }

    /// Runs every active rule over `exchange`, reporting each finding and each panic to `sink`.
    pub fn evaluate(&self, exchange: &Exchange<'_>, mut sink: impl FnMut(Evaluation)) {
        let exception = self.routes.get(&**exchange.route);
        let exchange = Exchange {
            error_fields: exception.map_or(&self.fields, |e| &e.fields),
            // An OpenAPI document describes the service's HTTP operations, not gRPC methods nor
            // the kubelet's probes: those are neither judged against it nor counted in its
            // coverage.
            contract: self
                .contract
                .as_ref()
                .filter(|_| exchange.grpc_trailers.is_none() && **exchange.route != *PROBE_ROUTE)
                .map(|c| c.lookup(exchange.route, exchange.method, exchange.status)),
            ..*exchange
        };
        // A gRPC call is judged by the gRPC rules only, an HTTP exchange by all the others.
        let other_kind = if exchange.grpc_trailers.is_some() {
            !self.grpc_rules
        } else {
            self.grpc_rules
        };
        let skipped = exception.map_or(0, |e| e.disabled) | other_kind;
        for active in &self.active {
            if skipped & (1 << active.index) != 0 {
                continue;
            }
            match catch_unwind(AssertUnwindSafe(|| (active.rule.evaluate)(&exchange))) {
                Ok(None) => {}
                Ok(Some(verdict)) => sink(Evaluation::Finding(Finding {
                    rule: active.rule,
                    index: active.index,
                    severity: active.severity.unwrap_or(verdict.severity),
                    evidence: verdict.evidence,
                })),
                Err(_) => sink(Evaluation::Panicked {
                    index: active.index,
                }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{case, default_fields};
    use crate::rules::{find, Verdict};

    fn findings(engine: &RuleSet, route: &str, case: &crate::rules::testing::Case) -> Vec<Finding> {
        let mut found = Vec::new();
        case.with_exchange(route, |exchange| {
            engine.evaluate(exchange, |outcome| {
                if let Evaluation::Finding(f) = outcome {
                    found.push(f);
                }
            })
        });
        found
    }

    #[test]
    fn the_contract_rules_run_only_with_a_contract() {
        let without = RuleSet::new(&[], &default_fields(), &[], None);
        let contract_rules = crate::rules::of_kind(RuleKind::Contract).count();
        assert_eq!(without.active.len(), CATALOGUE.len() - contract_rules);
        let with = RuleSet::new(
            &[],
            &default_fields(),
            &[],
            Some(crate::rules::testing::contract()),
        );
        assert_eq!(with.active.len(), CATALOGUE.len());
    }

    #[test]
    fn the_grpc_rules_are_the_catalogue_entries_named_grpc() {
        for rule in CATALOGUE {
            let grpc = rule.kind == RuleKind::Grpc;
            assert_eq!(rule.id.starts_with("grpc-"), grpc, "{}", rule.id);
        }
    }

    #[test]
    fn grpc_calls_are_judged_by_the_grpc_rules_alone() {
        let engine = RuleSet::new(&[], &default_fields(), &[], None);
        let ids = |found: Vec<Finding>| found.iter().map(|f| f.rule.id).collect::<Vec<_>>();
        // A 404 without a structured body breaks HTTP conventions, not gRPC's: for a gRPC
        // call it is grpc-non-200 (and its missing status), nothing else.
        let call = crate::rules::testing::grpc_call(404);
        assert_eq!(
            ids(findings(&engine, "/a.B/C", &call)),
            ["grpc-status-missing", "grpc-non-200"]
        );
        assert_eq!(
            ids(findings(
                &engine,
                "/a/b",
                &case(404).body("text/plain", "gone")
            )),
            ["unstructured-error-body"]
        );
    }

    #[test]
    fn grpc_calls_are_not_judged_against_the_openapi_contract() {
        let contract = crate::rules::testing::contract();
        let engine = RuleSet::new(&[], &default_fields(), &[], Some(contract.clone()));
        let ids = |found: Vec<Finding>| found.iter().map(|f| f.rule.id).collect::<Vec<_>>();
        // An undeclared route over plain HTTP; the same path as a correct gRPC call.
        let http = findings(
            &engine,
            "/shop.Items/Get",
            &case(200).on(&contract, "/shop.Items/Get"),
        );
        assert!(ids(http).contains(&"undeclared-route"));
        let call = crate::rules::testing::grpc_call(200)
            .trailer("grpc-status", "0")
            .on(&contract, "/shop.Items/Get");
        assert_eq!(
            ids(findings(&engine, "/shop.Items/Get", &call)),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn the_contract_rules_are_the_catalogue_entries_that_cite_openapi() {
        for rule in CATALOGUE {
            let contract = rule.kind == RuleKind::Contract;
            assert_eq!(rule.rationale.contains("OpenAPI"), contract, "{}", rule.id);
        }
    }

    #[test]
    fn the_catalogue_ids_are_unique_and_at_most_64() {
        let mut ids: Vec<_> = CATALOGUE.iter().map(|r| r.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), CATALOGUE.len());
        assert!(CATALOGUE.len() <= 64, "route exceptions use a 64-bit mask");
    }

    #[test]
    fn settings_switch_rules_off_and_override_severity() {
        let (missing_location, _) = find("created-without-location").unwrap();
        let (leaks, _) = find("error-leaks-internals").unwrap();
        let settings = [
            RuleSetting {
                rule: missing_location,
                enabled: false,
                severity: None,
            },
            RuleSetting {
                rule: leaks,
                enabled: true,
                severity: Some(Severity::Info),
            },
        ];
        let engine = RuleSet::new(&settings, &default_fields(), &[], None);
        assert!(findings(&engine, "/r", &case(201).method("POST")).is_empty());
        let leak = case(500).body("text/plain", "Traceback (most recent call last):");
        let found = findings(&engine, "/r", &leak);
        let leak_finding = found
            .iter()
            .find(|f| f.rule.id == "error-leaks-internals")
            .unwrap();
        assert_eq!(leak_finding.severity, Severity::Info);
    }

    #[test]
    fn route_exceptions_apply_to_their_route_only() {
        let (on_success, _) = find("error-body-on-success").unwrap();
        let graphql = RouteRules {
            route: "/graphql".into(),
            disabled: vec![on_success],
            error_fields: vec!["errors".into()],
        };
        let engine = RuleSet::new(&[], &default_fields(), &[graphql], None);
        let errors = case(200).body("application/json", r#"{"errors": [{"message": "x"}]}"#);
        assert!(findings(&engine, "/graphql", &errors).is_empty());
        assert_eq!(findings(&engine, "/rest", &errors).len(), 1);
        let bad_request = case(400).body("application/json", r#"{"errors": [{"message": "x"}]}"#);
        assert!(findings(&engine, "/graphql", &bad_request).is_empty());
        assert_eq!(
            findings(&engine, "/rest", &bad_request)[0].rule.id,
            "unstructured-error-body"
        );
    }

    static PANICS: Rule = Rule {
        id: "panics",
        kind: RuleKind::Http,
        title: "",
        severity: Severity::Info,
        fires_when: "",
        rationale: "",
        evaluate: |_| -> Option<Verdict> { panic!("a buggy rule") },
    };

    #[test]
    fn a_panicking_rule_is_reported_and_the_others_still_run() {
        let mut engine = RuleSet::new(&[], &default_fields(), &[], None);
        engine.active.insert(
            0,
            Active {
                index: 63,
                rule: &PANICS,
                severity: None,
            },
        );
        let case = case(201).method("POST");
        let (mut panics, mut found) = (Vec::new(), Vec::new());
        case.with_exchange("/r", |exchange| {
            engine.evaluate(exchange, |outcome| match outcome {
                Evaluation::Panicked { index } => panics.push(index),
                Evaluation::Finding(f) => found.push(f.rule.id),
            })
        });
        assert_eq!(panics, [63]);
        assert_eq!(found, ["created-without-location"]);
    }
}
