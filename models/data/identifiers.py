"""The one place that builds identifiers reaching SQL, and the rules for users' column names.

Users' column names are data, never SQL: a dataset's rows are stored under internal names
(`f0, f1, ...` for the features in the spec's order, `label` for the target, plus `batch_id`
and `row_number`), and the user's exact names live in the spec as the mapping. Every table or
column name that another module puts into SQL text comes from `quote()` here, which accepts only
our own strict pattern; anything else raises. Keeping all of it in one short module makes the
rule auditable: no other module formats a name into SQL.

`header_problem()` says why a column name from a user's file cannot be used (or None when it
can); the ingest refuses such a file before anything is written.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from warehouse.errors import OvernightError

SAFE_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
TARGET_COLUMN = "label"
META_COLUMNS = ("batch_id", "row_number")
MAX_HEADER_CHARS = 200
# pandas writes a frame's index into Parquet under these names and reads it back as the index
_PANDAS_INDEX = re.compile(r"^__index_level_\d+__$")


class IdentifierError(OvernightError):
    """An internal name that does not match the safe pattern (a bug, never a user's input)."""


def quote(name: str) -> str:
    """`name` as a quoted SQL identifier; only our own lower-case names are accepted."""
    if not isinstance(name, str) or not SAFE_IDENTIFIER.match(name):
        raise IdentifierError(f"refusing to put {name!r} into SQL: not an internal identifier")
    return f'"{name}"'


def quote_all(names: Iterable[str], prefix: str = "") -> str:
    """A comma-separated list of quoted internal names, each optionally table-qualified."""
    qualifier = f"{quote(prefix)}." if prefix else ""
    return ", ".join(qualifier + quote(n) for n in names)


def feature_column(position: int) -> str:
    """Internal name of the feature at `position` in the spec's feature list."""
    return f"f{int(position)}"


def storage_columns(n_features: int) -> list[str]:
    """Internal names of a rows table's data columns: the features, then the target."""
    return [*(feature_column(i) for i in range(n_features)), TARGET_COLUMN]


def rows_table(dataset: str, revision: int = 0) -> str:
    """Table of a dataset's rows under internal column names, one per spec revision.

    The `rowsr<N>_` prefix cannot be mistaken for the older `rows_<dataset>` tables (whose
    columns carried the users' names), since a dataset name starts with a letter.
    """
    return f"rowsr{int(revision)}_{dataset}"


def legacy_rows_table(dataset: str) -> str:
    """The table of a warehouse written before internal names: same column order, user names."""
    return f"rows_{dataset}"


def header_problem(name: object) -> str | None:
    """Why a column name of a user's file cannot be used, or None when it can.

    Any other name works end to end, whatever its case, punctuation, quotes, script or meaning
    (SQL keywords and our own internal names included), since it never reaches SQL.
    """
    if not isinstance(name, str):
        return f"is not text ({type(name).__name__})"
    if name == "":
        return "is empty; give every column a name"
    if not name.strip():
        return "is only whitespace; give the column a name"
    if name != name.strip():
        return "starts or ends with whitespace; remove it"
    if len(name) > MAX_HEADER_CHARS:
        return f"is {len(name)} characters long (at most {MAX_HEADER_CHARS})"
    control = next((c for c in name if unicodedata.category(c) in ("Cc", "Cs")), None)
    if control is not None:
        return f"contains the control character U+{ord(control):04X}"
    if _PANDAS_INDEX.match(name):
        return "is the name pandas gives a stored index; rename the column"
    return None


def duplicates(names: Iterable[str]) -> list[str]:
    """Names that occur more than once, in the order of their first repeat."""
    seen: set[str] = set()
    repeated: list[str] = []
    for name in names:
        if name in seen and name not in repeated:
            repeated.append(name)
        seen.add(name)
    return repeated
