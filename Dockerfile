# TrialWatch application image: one image for ingest, safety_rules, notifier and migrations
# (docker-compose.yml picks the command). Runtime dependencies only, pinned by constraints.txt.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TRIALWATCH_VAR_DIR=/var/lib/trialwatch

WORKDIR /app

# Dependencies first (changes rarely), then the code; no dev extras.
COPY pyproject.toml constraints.txt README.md ./
COPY shared/ shared/
COPY services/ services/
COPY trialwatch/ trialwatch/
COPY studies/ studies/
RUN pip install -c constraints.txt . \
    && rm -rf build ./*.egg-info

# Alembic configuration and migrations, run from /app as `alembic -c deploy/alembic.ini upgrade head`.
COPY deploy/ deploy/

# Unprivileged runtime user; the code stays root-owned and read-only for it.
RUN groupadd --system --gid 10001 trialwatch \
    && useradd --system --uid 10001 --gid trialwatch --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin trialwatch \
    && install -d -o trialwatch -g trialwatch -m 0750 /var/lib/trialwatch
USER 10001:10001

# No HEALTHCHECK here: docker-compose.yml probes each service's GET /healthz.
CMD ["trialwatch", "--help"]
