"""The DuckDB warehouse: settings, schema migrations, the connection helper and named reports.

This package is the bottom layer of overnight: it imports nothing else of ours, so `models`,
`monitoring` and `orchestration` can all depend on it.

Its names are loaded on first use (PEP 562): a module that only needs `warehouse.errors` (a
Metaflow training task, through the plain functions of `models`) does not pay for DuckDB and
the settings' pydantic-settings (about 0.1 s of every fresh task process on this host).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from warehouse.errors import OvernightError

if TYPE_CHECKING:
    from warehouse.connection import (
        WarehouseError,
        WarehouseLockedError,
        connect,
        transaction,
    )
    from warehouse.migrations import MIGRATIONS, current_version, migrate
    from warehouse.settings import Settings, get_settings

_HOMES = {
    "WarehouseError": "warehouse.connection", "WarehouseLockedError": "warehouse.connection",
    "connect": "warehouse.connection", "transaction": "warehouse.connection",
    "MIGRATIONS": "warehouse.migrations", "current_version": "warehouse.migrations",
    "migrate": "warehouse.migrations",
    "Settings": "warehouse.settings", "get_settings": "warehouse.settings",
}

__all__ = [
    "MIGRATIONS",
    "OvernightError",
    "Settings",
    "WarehouseError",
    "WarehouseLockedError",
    "connect",
    "current_version",
    "get_settings",
    "migrate",
    "transaction",
]


def __getattr__(name: str) -> Any:
    """`warehouse.connect` and the others, imported from their module when first asked for."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'warehouse' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
