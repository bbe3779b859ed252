"""The training run: the Metaflow flow, the plain functions its steps call, and the
runner that starts it."""
