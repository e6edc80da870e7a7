# One image for all of Harbor's processes; docker-compose.yml picks the command
# (docs/deploy.md):
#   web     gunicorn harbor.wsgi
#   engine  celery -A harbor worker -Q harbor.engine
#   worker  celery -A harbor worker -Q harbor.targets
#   beat    celery -A harbor beat (exactly one)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    STATIC_ROOT=/app/staticfiles

# curl for the web health check; git for command steps with `clone: true` (step workers).
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl git \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# Dependencies first, so a change to Harbor's code does not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir harbor builds accounts messages_api workers \
    && pip install --no-cache-dir . \
    && pip uninstall -y harbor

# Harbor runs from /app (templates/ and static/ live beside the packages). collectstatic
# needs a SECRET_KEY to start; it signs nothing, so a throwaway one is used and not kept.
COPY . .
RUN pip install --no-cache-dir --no-deps -e . \
    && SECRET_KEY=$(python -c 'import secrets; print(secrets.token_urlsafe(50))') \
        python manage.py collectstatic --noinput \
    && useradd --system --home-dir /app harbor \
    && chown -R harbor /app
USER harbor

EXPOSE 8000
CMD ["gunicorn", "harbor.wsgi", "--workers", "2", "--bind", "0.0.0.0:8000", "--no-control-socket"]
