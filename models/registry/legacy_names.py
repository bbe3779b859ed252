"""Module names of artifacts pickled before models/ moved into stage packages (issue 19).

A pickled pipeline names each of its classes and functions by module (`models.text.TextCleaner`,
`models.imbalance.ThresholdTunedClassifier`, `models.features.finite_or_nan`). Those modules
moved (to `models.learning.text.cleaner`, `models.learning.imbalance`, ...), so a data home
whose registry holds versions saved before the move could not load its champion. An import
hook answers the old names with the new modules: only names in `LEGACY_MODULES`, only under
`models.`, resolved to modules of this package — nothing is read from the artifact to decide
what gets imported, and artifacts are still verified (hash and signature) before unpickling.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import io
import sys
import types

import joblib

# Old module -> the modules that now hold what it defined (the first that has a name wins).
LEGACY_MODULES: dict[str, tuple[str, ...]] = {
    "models.features": ("models.learning.preprocessing", "models.data.spec"),
    "models.imbalance": ("models.learning.imbalance",),
    "models.text": ("models.learning.text.cleaner", "models.learning.text.vectorisers",
                    "models.learning.text.algorithms", "models.learning.text.explain"),
    "models.catalogue": ("models.learning.algorithms", "models.learning.catalogue"),
    "models.ensembles": ("models.learning.ensembles.stacking",),
    "models.ensemble_base": ("models.learning.ensembles.base",),
    "models.ensemble_selection": ("models.learning.ensembles.selection",),
    "models.ensemble_search": ("models.learning.ensembles.search",),
    "models.ensemble_diversity": ("models.learning.ensembles.diversity",),
}


class _LegacyLoader(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = types.ModuleType(spec.name, f"Former name of {LEGACY_MODULES[spec.name]}")
        for target in reversed(LEGACY_MODULES[spec.name]):   # the first listed wins
            module.__dict__.update({k: v for k, v in vars(importlib.import_module(target)).items()
                                    if not k.startswith("__")})
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to run: `create_module` filled the namespace."""


class LegacyModuleFinder(importlib.abc.MetaPathFinder):
    """Finds only the old module names of `LEGACY_MODULES`."""

    def find_spec(self, fullname: str, path: object = None, target: object = None
                  ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in LEGACY_MODULES:
            return None
        return importlib.machinery.ModuleSpec(fullname, _LegacyLoader())


def install() -> None:
    """Answer the old names from now on (idempotent; called before unpickling an artifact)."""
    if not any(isinstance(f, LegacyModuleFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, LegacyModuleFinder())   # before any finder of stale files


def unpickle(data: bytes) -> object:
    """Load verified artifact bytes, answering the old module names (see above)."""
    install()
    return joblib.load(io.BytesIO(data))
