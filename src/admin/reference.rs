//! `docs/metrics.md`: the metrics reference, generated from the families the running sidecar
//! registers (`statuscope reference metrics`; a test fails when the file is stale), so a
//! renamed metric or label cannot silently break what the dashboards and alerts rely on.

use crate::families::Families;

const INTRODUCTION: &str = "\
# Metrics reference

Generated from the registered metric families by `statuscope reference metrics` (`make docs`);
a test fails when this file is stale.

Served by the admin listener at `/metrics` in the Prometheus text format, from a registry of
statuscope's own. The names and labels are a contract: the dashboards in `dashboards/` and the
alerts in `deploy/` rely on them. The meaning column is each family's help text, as `/metrics`
serves it.

";

const LABEL_VALUES: &str = r#"
Label values:

- `class`: `1xx`, `2xx`, `3xx`, `4xx`, `5xx`, or `invalid` for a code outside 100–599.
  Interim `1xx` responses (100 Continue, 103 Early Hints) are forwarded but not counted: only
  the final response is. A `101 Switching Protocols` is final and is counted.
- `origin`: `upstream` (the service answered), `proxy` (statuscope answered, see the errors
  table), `client` (the client hung up first; always `code="499"`).
- `method`: `GET`, `HEAD`, `POST`, `PUT`, `DELETE`, `CONNECT`, `OPTIONS`, `TRACE`, `PATCH`, or
  `_OTHER` for anything else.
- `http_version`: `1.0`, `1.1` or `2`, the HTTP version the client spoke (a request whose
  version could not be read counts as `1.1`).
- `outcome` (`statuscope_otlp_exports_total`): `success`, `retried`, `rejected`, `dropped`; see
  [otlp.md](otlp.md).
- `kind`: `connect_refused`, `connect_timeout`, `read_timeout`, `write_timeout`,
  `response_timeout`, `reset` (reset, or closed before answering), `truncated` (closed before
  the end of the body it announced), `other`. Every kind is exported at 0 from start-up, so
  `rate()` works before the first error.
- `route="__malformed__"`: requests refused because their request line could not be read.

Useful queries:

```promql
# requests per second by class, per route
sum by (route, class) (rate(statuscope_responses_total[5m]))
# share of 5xx per route, not counting client hang-ups
sum by (route) (rate(statuscope_responses_total{class="5xx"}[5m]))
  / sum by (route) (rate(statuscope_responses_total{origin!="client"}[5m]))
# p95 latency per route
histogram_quantile(0.95, sum by (route, le) (rate(statuscope_response_duration_seconds_bucket[5m])))
```
"#;

const INJECTOR: &str = "
## The injector

`statuscope injector` (the admission webhook, see [deploy.md](deploy.md)) serves its own
families on its `--admin-listen` port:

";

/// The reference for every family the sidecar (`sidecar`) and the admission webhook
/// (`injector`) register, each in registration order.
pub fn markdown(sidecar: &Families, injector: &Families) -> String {
    let mut out = String::from(INTRODUCTION);
    out.push_str(&sidecar.reference_table());
    out.push_str(LABEL_VALUES);
    out.push_str(INJECTOR);
    out.push_str(&injector.reference_table());
    out
}
