"""The DuckDB warehouse: settings, schema migrations, the connection helper and named reports.

This package is the bottom layer of overnight: it imports nothing else of ours, so `models`,
`monitoring` and `orchestration` can all depend on it.
"""

from warehouse.connection import (
    WarehouseError,
    WarehouseLockedError,
    connect,
    transaction,
)
from warehouse.errors import OvernightError
from warehouse.migrations import MIGRATIONS, current_version, migrate
from warehouse.settings import Settings, get_settings

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
