"""The data stage of a night: dataset specs, built-in generators and drift scenarios,
ingesting a file, checking a batch and storing it in the warehouse."""
