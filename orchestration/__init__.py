"""Orchestration: the `overnight` command line, and (later) the Prefect flows and deployments."""
