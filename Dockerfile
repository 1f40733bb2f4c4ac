# sgtm tagging server. Config is mounted at /config (every *.yaml in it is a container).
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY sgtm ./sgtm
COPY plugins ./plugins
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.12-slim
COPY --from=build /install /usr/local
RUN useradd --system --uid 10001 --home-dir /var/lib/sgtm --create-home sgtm
COPY config/example.yaml /config/example.yaml
USER sgtm
WORKDIR /var/lib/sgtm
ENV SGTM_DATA_DIR=/var/lib/sgtm/var \
    PYTHONUNBUFFERED=1
# The delivery outbox and dead letters: mount a volume here so they outlive the container.
VOLUME ["/var/lib/sgtm/var"]
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["sgtm"]
CMD ["serve", "-c", "/config", "--host", "0.0.0.0", "--port", "8080"]
