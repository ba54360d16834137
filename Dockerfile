# triagebot: slim Python base, non-root user, HTTP mode by default.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    TRIAGE_RUNBOOKS_DIR=/app/runbooks

WORKDIR /app
COPY pyproject.toml README.md ./
COPY slackbot ./slackbot
COPY handlers ./handlers
RUN pip install --no-compile .
COPY runbooks ./runbooks
COPY manifest.yml ./

RUN useradd --create-home --uid 10001 triage && mkdir -p /data && chown triage /data
USER triage
ENV TRIAGE_DATABASE_URL=sqlite:////data/triage.db

EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=4).status == 200 else 1)"
CMD ["triagebot", "serve", "--host", "0.0.0.0", "--port", "3000"]
