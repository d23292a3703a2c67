# statuscope's image: a static-enough binary on a distroless, non-root base.
#   docker build -t statuscope:0.1.0 .
FROM rust:1-bookworm AS build
# cmake builds pingora's zlib-ng; Debian's point releases move its exact version, so unpinned.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY deploy/generate.rs ./deploy/generate.rs
RUN cargo build --release --locked --bin statuscope

# glibc and libgcc only, no shell, user 65532 ("nonroot").
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/statuscope /usr/local/bin/statuscope
USER 65532:65532
EXPOSE 7070 9070
ENTRYPOINT ["/usr/local/bin/statuscope"]
CMD ["run", "--config", "/etc/statuscope/statuscope.yaml"]
