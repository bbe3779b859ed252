"""The real outside components: Metaflow runs, Prefect flows, gunicorn on loopback,
a headless browser. Slow; `make test` and CI run them, `make test-fast` does not."""
