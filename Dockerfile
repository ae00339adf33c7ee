# syntax=docker/dockerfile:1
# Multi-stage: dependencies are built in the first stage; the second runs as a non-root user.

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
RUN python -m venv /opt/venv
COPY pyproject.toml constraints.txt README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
COPY consent ./consent
# Editable, so the code, its migrations and its policies stay together under /app.
RUN /opt/venv/bin/pip install -c constraints.txt -e .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin exchange \
    && mkdir /data && chown exchange /data
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    EXCHANGE_DATA_DIR=/data \
    EXCHANGE_DATABASE_URL=sqlite+aiosqlite:////data/exchange.db
USER exchange
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
# Migrate (a no-op when already at head), then serve.
CMD ["sh", "-c", "exchange db upgrade && exec exchange serve --host 0.0.0.0 --port 8000"]
