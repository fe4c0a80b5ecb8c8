# Build stage: compiles the release binary (migrations are embedded in it).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates crates
COPY migrations migrations
RUN cargo build --release --locked -p wallet-server

# Runtime stage: the binary, its default configuration, curl for the healthcheck, no root.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin wallet
WORKDIR /app
COPY --from=build /src/target/release/wallet-server /usr/local/bin/wallet-server
COPY config.env /app/config.env
USER wallet
ENV WALLET_HTTP_ADDR=0.0.0.0:8080 WALLET_ADMIN_ADDR=0.0.0.0:9090 WALLET_LOG_FORMAT=json
# 8080: the API. 9090: metrics and profiles; publish it only to a private network.
EXPOSE 8080 9090
HEALTHCHECK --interval=5s --timeout=3s --retries=12 \
  CMD curl -fsS http://127.0.0.1:8080/health/ready || exit 1
ENTRYPOINT ["/usr/local/bin/wallet-server"]
