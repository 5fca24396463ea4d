# The production image: web (gunicorn), worker and beat all run from it (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# git: the data-models repository is read and written with git plumbing commands.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# Dependencies first, so a code change does not reinstall them.
COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY . .
# --no-deps: the pinned set above is the whole dependency set. This adds the `dmaas` command.
RUN pip install --no-deps -e . \
    && DMAAS_SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(64))')" \
       python manage.py collectstatic --noinput \
    && useradd --create-home --uid 1000 dmaas \
    && mkdir -p /data \
    && chown -R dmaas /data /app/var

# /data holds the data-models repository (a named volume; it starts with this owner).
ENV DMAAS_REPO=/data/data-models.git
USER dmaas
EXPOSE 8000
CMD ["gunicorn", "portal.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--threads", "4", "--graceful-timeout", "30"]
