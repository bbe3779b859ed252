"""Ensembles as catalogue entries: stacking, dynamic selection, optimised
voting, blending, and the diversity and search tools they share."""
