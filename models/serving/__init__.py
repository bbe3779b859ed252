"""Serving the champions: the Flask API, its prediction logs, hot reload and batch scoring.

Importing this package is cheap; Flask and the API live in `models.serving.app`.
"""
