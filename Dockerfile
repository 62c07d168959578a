# cobrowse: control API and rewriting proxy. `docker run IMAGE` serves both (embedded store);
# pass `--role api` / `--role proxy` and `--redis-url` to run one part (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    COBROWSE_HOST=0.0.0.0

WORKDIR /app
COPY pyproject.toml README.md ./
COPY cobrowse ./cobrowse
COPY rewriter ./rewriter
COPY proxy ./proxy
COPY control_api ./control_api
COPY agent_ui ./agent_ui
RUN pip install . && useradd --create-home --uid 10001 cobrowse

USER cobrowse
EXPOSE 8000 8001

# /healthz answers on the API port and on the proxy port; a container runs one or both.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request as u\nfor p in (os.environ.get('COBROWSE_API_PORT', '8000'), os.environ.get('COBROWSE_PROXY_PORT', '8001')):\n    try:\n        u.urlopen(f'http://127.0.0.1:{p}/healthz', timeout=4); sys.exit(0)\n    except OSError:\n        pass\nsys.exit(1)"]

ENTRYPOINT ["cobrowse", "serve"]
