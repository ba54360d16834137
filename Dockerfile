# triagebot: the wheel built from this checkout (playbooks and manifest.yml inside), in a virtual
# environment, as a non-root user, HTTP mode by default. docs/deploy.md shows how to run it;
# `make image-test` (deploy/image-test) builds and runs it end to end.
#
#   docker build -t triagebot .
#   docker build --build-arg BD_URL=https://…/bd.tar.gz --build-arg BD_SHA256=… -t triagebot .
#
# Build arguments:
#   BASE       the Python 3.11+ base image (a Debian one without a registry: see docs/deploy.md)
#   BD_URL     a bd release (a tar.gz holding `bd`, or the bare binary) installed as /usr/local/bin/bd;
#              without it, mount a bd binary at run time (-v /usr/local/bin/bd:/usr/local/bin/bd:ro)
#   BD_SHA256  the sha256 the download must have (recommended with BD_URL)
#
# Only the legacy builder's features are used (no BuildKit), so `docker build` works everywhere.
ARG BASE=python:3.11-slim

FROM ${BASE} AS build
WORKDIR /src
# The same files `make dist` packages; slackbot/shipped/ links to runbooks/ and manifest.yml.
COPY pyproject.toml README.md manifest.yml ./
COPY runbooks ./runbooks
COPY handlers ./handlers
COPY slackbot ./slackbot
RUN python3 -m venv /opt/build && /opt/build/bin/pip wheel --no-deps --wheel-dir /dist .

FROM ${BASE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PATH=/opt/triagebot/bin:$PATH

# A virtual environment: Debian's own Python refuses `pip install` (PEP 668), and the venv puts a
# `python` on PATH for the HEALTHCHECK (Debian ships only python3).
COPY --from=build /dist /tmp/dist
RUN python3 -m venv /opt/triagebot && /opt/triagebot/bin/pip install --no-compile /tmp/dist/*.whl && rm -rf /tmp/dist

# Declared here, not at the top of the stage: a build argument's value is part of the cache key of
# every RUN after it, so a new BD_URL would otherwise reinstall the wheel too.
ARG BD_URL=""
ARG BD_SHA256=""
RUN if [ -n "$BD_URL" ]; then \
      python -c "import hashlib, io, os, sys, tarfile, urllib.request; \
data = urllib.request.urlopen(os.environ['BD_URL'], timeout=300).read(); \
want = os.environ.get('BD_SHA256'); \
sys.exit('bd: sha256 mismatch') if want and hashlib.sha256(data).hexdigest() != want else None; \
tar = tarfile.open(fileobj=io.BytesIO(data)) if data[:2] == b'\x1f\x8b' else None; \
data = tar.extractfile(next(m for m in tar if os.path.basename(m.name) == 'bd')).read() if tar else data; \
open('/usr/local/bin/bd', 'wb').write(data); os.chmod('/usr/local/bin/bd', 0o755)" \
      && bd version; \
    fi

RUN useradd --create-home --uid 10001 triage && mkdir -p /data && chown triage /data
USER triage
WORKDIR /data
VOLUME /data
# SQLite on the volume by default; set TRIAGE_DATABASE_URL=postgresql+psycopg://… for PostgreSQL.
ENV TRIAGE_DATABASE_URL=sqlite:////data/triage.db \
    BEADS_DIR=/data/.beads

# TRIAGE_HOST/TRIAGE_PORT: with --network host the port is the host's, so it may have to change;
# the health check follows it. `exec` keeps triagebot PID 1, so `docker stop` reaches it at once.
ENV TRIAGE_HOST=0.0.0.0 \
    TRIAGE_PORT=3000
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import os, sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ['TRIAGE_PORT'], timeout=4).status != 200)"
CMD ["sh", "-c", "exec triagebot serve --host \"$TRIAGE_HOST\" --port \"$TRIAGE_PORT\""]
