# Multi-stage build of prom-aggregation-gateway: a static musl binary on a
# distroless base, running as a non-root user.
#
#   docker build -t prom-aggregation-gateway .
#   docker run -p 8080:8080 prom-aggregation-gateway

FROM rust:1.95-bookworm AS build
RUN rustup target add x86_64-unknown-linux-musl \
 && apt-get update && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, so source edits do not rebuild them.
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto proto
COPY clients/rust/Cargo.toml clients/rust/build.rs clients/rust/
COPY bench/load/Cargo.toml bench/load/
RUN mkdir -p src benches clients/rust/src bench/load/src \
 && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
 && echo 'fn main() {}' > benches/pipeline.rs \
 && touch clients/rust/src/lib.rs && echo 'fn main() {}' > bench/load/src/main.rs \
 && cargo build --release --locked --target x86_64-unknown-linux-musl -p prom-aggregation-gateway || true
COPY . .
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked --target x86_64-unknown-linux-musl -p prom-aggregation-gateway \
 && cp target/x86_64-unknown-linux-musl/release/prom-aggregation-gateway /prom-aggregation-gateway

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /prom-aggregation-gateway /usr/local/bin/prom-aggregation-gateway
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/prom-aggregation-gateway"]
