//! The one judging path: the rule catalogue over an exchange, and where its verdicts go. The
//! proxy (either engine), the CI gate (`run --report`) and `statuscope lint` all judge through
//! [`judge`]; they differ only in the [`Verdicts`] that receive the outcome.

use std::sync::MutexGuard;

use super::findings::Place;
use super::report::Report;
use super::Recorder;
use crate::rules::rule_set::{Evaluation, Finding, RuleSet};
use crate::rules::{Exchange, CATALOGUE};

/// What receives the verdicts on one exchange.
pub trait Verdicts {
    /// A rule fired.
    fn finding(&mut self, finding: &Finding, place: Place<'_>);
    /// The rule at `index` in the catalogue panicked; the others still ran.
    fn panicked(&mut self, index: usize, place: Place<'_>);
    /// Every rule has run; `flagged` when at least one fired.
    fn judged(&mut self, place: Place<'_>, flagged: bool);
}

/// Runs the rule set `rules` over `exchange`, which happened at `place`, and hands each outcome to
/// `verdicts`.
pub fn judge(
    rules: &RuleSet,
    exchange: &Exchange<'_>,
    place: Place<'_>,
    verdicts: &mut impl Verdicts,
) {
    let mut flagged = false;
    rules.evaluate(exchange, |outcome| match outcome {
        Evaluation::Finding(finding) => {
            flagged = true;
            verdicts.finding(&finding, place);
        }
        Evaluation::Panicked { index } => verdicts.panicked(index, place),
    });
    verdicts.judged(place, flagged);
}

/// Verdicts into a CI report: findings counted by rule and route, each first one kept as the
/// example together with the `source` it came from (asked for only then).
pub struct ReportVerdicts<'a, S> {
    /// The report.
    pub report: &'a mut Report,
    /// Names where the exchange came from (`file.har entry 3`), or `None` for live traffic.
    pub source: S,
}

impl<S: Fn() -> Option<String>> Verdicts for ReportVerdicts<'_, S> {
    fn finding(&mut self, finding: &Finding, place: Place<'_>) {
        self.report.add(finding, place, &self.source);
    }

    fn panicked(&mut self, index: usize, _place: Place<'_>) {
        // Recorded traffic that makes a rule panic is input the run could not judge in full.
        if let Some(source) = (self.source)() {
            let id = CATALOGUE[index].id;
            self.report
                .input_errors
                .push(format!("{source}: rule {id} panicked"));
        }
    }

    fn judged(&mut self, _place: Place<'_>, _flagged: bool) {
        self.report.judged += 1;
    }
}

/// Live traffic has no recording to point at.
type NoSource = fn() -> Option<String>;

fn no_source() -> Option<String> {
    None
}

/// Verdicts on live traffic: the metrics, the recent findings behind `/findings`, and the CI
/// report when `run --report` asked for one.
pub struct LiveVerdicts<'a> {
    recorder: &'a Recorder,
    // Only in CI-gate mode; uncontended there.
    report: Option<MutexGuard<'a, Report>>,
}

impl<'a> LiveVerdicts<'a> {
    /// Verdicts into `recorder`.
    pub fn new(recorder: &'a Recorder) -> Self {
        LiveVerdicts {
            recorder,
            report: recorder
                .report
                .as_ref()
                .map(|report| report.lock().unwrap_or_else(|e| e.into_inner())),
        }
    }

    fn report(&mut self) -> Option<ReportVerdicts<'_, NoSource>> {
        self.report.as_deref_mut().map(|report| ReportVerdicts {
            report,
            source: no_source as NoSource,
        })
    }
}

impl Verdicts for LiveVerdicts<'_> {
    fn finding(&mut self, finding: &Finding, place: Place<'_>) {
        let metrics = &self.recorder.metrics;
        metrics.record_finding(finding, place.route, place.method, place.status);
        if let Some(mut report) = self.report() {
            report.finding(finding, place);
        }
        self.recorder.findings.add(finding, place);
    }

    fn panicked(&mut self, index: usize, _place: Place<'_>) {
        self.recorder.metrics.rules.record_panic(index);
    }

    fn judged(&mut self, place: Place<'_>, flagged: bool) {
        if let Some(mut report) = self.report() {
            report.report.exchanges += 1;
            report.judged(place, flagged);
        }
        self.recorder
            .metrics
            .record_judged(place.route, place.method, flagged);
    }
}
