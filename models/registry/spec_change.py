"""Replacing a dataset's spec (`overnight datasets reset-spec`).

It lives with the registry, not with ingestion, because what decides it is the registry's:
a spec cannot change under a champion that was trained on another one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from models.data.datasets import reset_spec
from models.data.ingest import IngestError, load_spec_file
from models.data.spec import DatasetSpec
from models.registry.versions import get_alias, get_version
from warehouse import get_settings, transaction


def change_spec(dataset: str, spec_path: Path | None,
                before_write: Callable[[], object] | None = None) -> str:
    """`overnight datasets reset-spec`: replace a dataset's spec; a sentence saying what
    changed. Refused (nothing written) while a champion trained on another spec serves it."""
    new = load_spec_file(Path(spec_path), dataset) if spec_path is not None else None
    if not get_settings().warehouse_path.exists():
        raise IngestError(f"dataset {dataset!r} has no spec yet: nothing to reset")
    if before_write is not None:
        before_write()
    with transaction() as con:
        champion = get_alias(dataset, "champion", con)
        champion_spec = None
        if champion is not None:
            card = get_version(champion, con).card
            champion_spec = DatasetSpec.model_validate(card["input_schema"])
        spec = reset_spec(con, dataset, new, champion, champion_spec)
    if spec is None:
        return (f"{dataset}: spec cleared; the next accepted file's inferred spec becomes "
                "the spec (ingest it with --target)")
    return (f"{dataset}: spec revision {spec.revision} ({len(spec.features)} features, "
            f"target {spec.target!r}); earlier batches are kept but not trained on")
