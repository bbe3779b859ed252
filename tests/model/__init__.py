"""Model quality: the built-in datasets' targets, reached by the shipped settings."""
