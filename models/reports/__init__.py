"""Writing what a training run found: the model report and the production report."""
