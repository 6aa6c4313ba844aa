# One image for every role: the four services, `synap-admin` (migrations, topic provisioning)
# and `synapctl`. The Helm chart picks the binary per Deployment:
#   docker build -t synap-webhooks .
#   docker run synap-webhooks synap-admin migrate
FROM rust:1.95-slim-bookworm AS build
# The bundled librdkafka builds with the C toolchain; TLS and SASL/SCRAM link OpenSSL.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bins \
 && mkdir /out \
 && cp target/release/synap-ingest target/release/synap-router target/release/synap-sender \
       target/release/synap-control target/release/synap-admin target/release/synapctl /out/

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin synap
COPY --from=build /out/ /usr/local/bin/
COPY deploy/synap.example.toml /etc/synap/synap.example.toml
# Numeric, so that Kubernetes can check runAsNonRoot.
USER 10001:10001
# 9090: /metrics, /healthz, /readyz (every role); 50051: control's gRPC API.
EXPOSE 9090 50051
CMD ["synap-control"]
