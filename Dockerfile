FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 DATA_DIR=/data
WORKDIR /app
# Dependencies first (the project installs no packages of its own: code runs from /app), so code edits reuse this layer.
COPY pyproject.toml ./
RUN pip install --upgrade pip && pip install .
COPY . .
# Settings refuse to load without keys and SITE_URL when DEBUG is off; collectstatic uses none, so throwaway
# ones do here.
RUN SECRET_KEY=collectstatic-only FIELD_ENCRYPTION_KEY=collectstatic-only-fields SITE_URL=https://collectstatic.invalid \
    python manage.py collectstatic --noinput \
    && useradd --system --home /app app && mkdir -p /data && chown -R app /data
USER app
EXPOSE 8000
# -v 0: no access log (it would write OAuth callbacks' codes); as docker-compose.yml and the Procfile.
CMD ["daphne", "-v", "0", "-b", "0.0.0.0", "-p", "8000", "zoomapp.asgi:application"]
