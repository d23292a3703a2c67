# statuscope — the two commands are `make demo` and `make test`.
#
# `make deps` installs what the build and the tests need from Debian when it is missing:
# cmake (pingora builds zlib-ng with it) and promtool (Debian's prometheus package), which the
# tests use to lint the live /metrics output.

CARGO ?= cargo
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES :=
ifeq ($(shell command -v cmake),)
APT_PACKAGES += cmake
endif
ifeq ($(shell command -v promtool),)
APT_PACKAGES += prometheus
endif

DEMO_ARGS ?=

.PHONY: all deps build test demo docs generate bench lint fmt clean

all: build

deps:
ifneq ($(strip $(APT_PACKAGES)),)
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(APT_PACKAGES)
endif
	@command -v cmake >/dev/null && command -v promtool >/dev/null

build: deps
	$(CARGO) build --release

## demo: statuscope in front of the built-in demo service, with a live table (Ctrl-C stops).
demo: deps
	$(CARGO) run --release -- demo $(DEMO_ARGS)

## test: every unit and end-to-end test, over real sockets.
test: deps
	$(CARGO) test --all-targets
	$(CARGO) test --doc

## bench: the rules' micro-benchmark, then rules on vs off through the proxy (installs nginx and wrk).
bench: deps
	$(CARGO) bench --bench rules
	bench/rules-overhead.sh

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
