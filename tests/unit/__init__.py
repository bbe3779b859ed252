"""Plain functions and estimators on in-memory data: no warehouse file, no server."""
