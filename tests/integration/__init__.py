"""Our components against real files: a DuckDB warehouse, artifacts, the CLI
and the Flask app in process. Seconds each."""
