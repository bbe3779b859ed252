"""Ensembles as catalogue entries: stacking, dynamic selection, optimised
voting, and the diversity and search tools they share."""
