"""Helpers the tests share: servers on loopback ports, champions, the board's home."""
