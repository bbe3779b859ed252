"""Seeded generators of the three demo workloads, with named drift effects."""
