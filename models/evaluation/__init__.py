"""Judging a model: metrics, statistical tests and explanations."""
