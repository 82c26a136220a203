# syntax=docker/dockerfile:1
# imgclassd container image: Debian 12 (bookworm-slim), the daemon as a
# non-root user, OpenBLAS and the other runtime libraries from Debian.
#
#   docker build -t imgclassd .
#   docker run --rm -p 8080:8080 --stop-timeout 40 imgclassd
#
# Configuration, in increasing priority:
#   /etc/imgclassd/imgclassd.json  the repository's conf/imgclassd.json with
#                                  models_dir=/models; mount your own file here
#                                  (-v ./my.json:/etc/imgclassd/imgclassd.json:ro)
#   IMGCLASSD_* variables          one per setting (-e IMGCLASSD_LOG_FORMAT=json;
#                                  `docker run --rm imgclassd imgclassd --help` lists them)
#   --flags after the image name   (docker run imgclassd imgclassd -c ... --port 9000)
# The image sets no IMGCLASSD_* variable of its own: a variable beats the
# file, so one baked in here would silently override a mounted config.
#
# Models: the model repository is /models, one folder per model. The image
# holds the default model (/models/fashion-mnist); mount a repository over
# /models to serve others (-v /srv/models:/models:ro), then `docker kill -s HUP`
# reloads it without a restart. (No VOLUME: it would leave an anonymous volume
# behind every run that mounts nothing.)
#
# Stopping: SIGTERM drains. /readyz turns 503 at once, requests are served for
# drain_grace_ms (5 s), then what was accepted is answered (at most
# shutdown_timeout_ms, 30 s) and the daemon exits 0. Give it that long:
# `docker run --stop-timeout 40`, compose `stop_grace_period: 40s`,
# Kubernetes `terminationGracePeriodSeconds: 40` (with readinessProbe
# httpGet /readyz and livenessProbe httpGet /healthz, port 8080).
#
# The build steps are docker/build.sh, which CI runs on a Debian 12 machine
# too; it stages the runtime files and the list of runtime packages.

# ---- build --------------------------------------------------------------------------------
FROM debian:bookworm-slim AS build
WORKDIR /src
# Only what the daemon's build reads (not build/, build-models/, ...).
COPY Makefile ./
COPY include/ include/
COPY src/ src/
COPY conf/ conf/
COPY docker/ docker/
# models/ may not exist yet: BuildKit lets a wildcard match nothing.
COPY model[s] models/
RUN docker/build.sh --stage /stage && rm -rf /var/lib/apt/lists/*

# ---- runtime ------------------------------------------------------------------------------
FROM debian:bookworm-slim
LABEL org.opencontainers.image.title="imgclassd" \
      org.opencontainers.image.description="Image classification daemon (ONNX models, HTTP API)"

# The shared libraries the binary links, found by build.sh with ldd + dpkg -S
# (bookworm: libjansson4 libmicrohttpd12 libopenblas0-pthread libprotobuf-c1
# libspng0 libsystemd0 libturbojpeg0 libuv1).
COPY --from=build /stage/runtime-packages.txt /tmp/runtime-packages.txt
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive xargs -a /tmp/runtime-packages.txt \
        apt-get install -y --no-install-recommends \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /tmp/runtime-packages.txt

RUN groupadd --system --gid 10001 imgclassd \
 && useradd --system --uid 10001 --gid imgclassd --home-dir /var/lib/imgclassd \
        --no-create-home --shell /usr/sbin/nologin imgclassd \
 && install -d -o imgclassd -g imgclassd -m 0750 /var/lib/imgclassd

# /usr/local/bin/imgclassd, /usr/local/bin/imgclassd-healthcheck,
# /etc/imgclassd/imgclassd.json, /models (root-owned, read-only to the daemon).
COPY --from=build /stage/root/ /

USER 10001:10001
WORKDIR /var/lib/imgclassd
EXPOSE 8080

# Readiness through the daemon's own /readyz, with bash's /dev/tcp (no curl
# in the image). Loading a large model takes a while: start period 60 s.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["/usr/local/bin/imgclassd-healthcheck"]

STOPSIGNAL SIGTERM
CMD ["imgclassd", "-c", "/etc/imgclassd/imgclassd.json"]
