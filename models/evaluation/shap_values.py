"""SHAP explanations (the `shap` library) of any fitted model of the catalogue.

Why SHAP rather than the occlusion of `models.evaluation.explain`: SHAP values add up, with
the explainer's base value, to the model's output for the row, so "what pushed this
prediction" has one consistent answer for one row, for a whole test set (global
importance) and for the people who read the board or a clinician's report.

Which explainer (`explainer_kind`):
- `linear`: the classifier is linear in the preprocessed features (logistic regression, SGD,
  a calibrated linear SVM's inner SVM, naive Bayes' joint log-likelihood): `shap.LinearExplainer`
  on the pipeline's transformed features. Its output is the margin (`decision_function`, or
  the joint log-likelihood for naive Bayes) of each class, which the values plus the base value
  reproduce exactly. One-hot columns and text tokens are summed back to their input column.
- `tree`: tree ensembles (random forest, histogram gradient boosting) of tabular data:
  `shap.TreeExplainer` (path-dependent: the trees' training covers are the background) over
  the transformed features,
  summed back the same way; output the forest's probability or the boosting's log-odds.
- `permutation`: everything else (SVM, k-NN, ensembles, the dummy): `shap.PermutationExplainer`
  on the raw input columns, each column encoded as indices into a table of its values (so
  categories and missing values survive the masker's arithmetic); output the probability.
  Text models that are not linear get the same explainer over the words of the article
  (a masked word is removed from the text).

The predicted class, and so the class explained, follows the model's decision rule (least
expected cost for a cost-sensitive model, else the most probable class), as serving does.
Background data is a small sample of the rows saved with the model at training time (the
reference sample), drawn with a seed: the same model, rows and seed give the same numbers.
`shap` is imported inside this module's functions only, so importing the module is cheap.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import sparse

from models.data.spec import DatasetSpec, feature_frame
from models.evaluation.explain import fitted_pipeline
from models.evaluation.metrics import to_json

ExplainerKind = Literal["linear", "tree", "permutation"]
WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")   # a word, as models.learning.text reads one

BACKGROUND_ROWS = 100          # linear: the mean of these rows is the baseline
PERMUTATION_BACKGROUND_ROWS = 10   # every masked variant is scored once per background row
PERMUTATIONS = 2               # permutations per explained row (model-agnostic explainer)
MAX_WORDS = 40                 # words of an article the model-agnostic text explainer varies
TOP_WORDS = 10
TEXT_CHUNK = 16                # rows explained at a time (text SHAP values are dense)

OUTPUTS = {
    "linear": "margin (decision function) of the linear model",
    "naive_bayes": "joint log-likelihood of naive Bayes, centred over the classes",
    "tree_probability": "probability of the forest",
    "tree_log_odds": "log-odds of the boosted trees",
    "permutation": "probability of the model",
}


class ExplanationError(ValueError):
    """A model or frame that cannot be explained (says which and why)."""


# --------------------------------------------------------------------------- helpers


def background_sample(frame: pd.DataFrame, spec: DatasetSpec, rows: int = BACKGROUND_ROWS,
                      *, seed: int = 0) -> pd.DataFrame:
    """At most `rows` rows of `frame` (its spec features), drawn with `seed`."""
    features = feature_frame(frame, spec).reset_index(drop=True)
    if len(features) > rows:
        features = features.sample(rows, random_state=seed).reset_index(drop=True)
    return features


def decided_classes(model: Any, proba: np.ndarray) -> np.ndarray:
    """Per row, the index (into `model.classes_`) of the class the model's rule chooses."""
    cost = getattr(model, "cost_", None)
    if cost is not None:
        return np.asarray(np.argmin(proba @ cost, axis=1))
    return np.asarray(np.argmax(proba, axis=1))


def _linear_weights(classifier: Any) -> tuple[np.ndarray, np.ndarray, str] | None:
    """(coefficients classes x features, intercepts, output) of a linear classifier, or None."""
    from sklearn.calibration import CalibratedClassifierCV

    if isinstance(classifier, CalibratedClassifierCV):
        inner = [c.estimator for c in classifier.calibrated_classifiers_]
        if not all(hasattr(e, "coef_") and hasattr(e, "intercept_") for e in inner):
            return None
        coef = np.mean([np.atleast_2d(e.coef_) for e in inner], axis=0)
        intercept = np.mean([np.atleast_1d(e.intercept_) for e in inner], axis=0)
        return coef, intercept, "linear"
    if hasattr(classifier, "feature_log_prob_") and hasattr(classifier, "class_log_prior_"):
        # centred over classes: the same probabilities (softmax ignores a shift shared by the
        # classes), and a word's weight says how much it favours a class over the others
        log_prob = np.asarray(classifier.feature_log_prob_, dtype=float)
        prior = np.asarray(classifier.class_log_prior_, dtype=float)
        return log_prob - log_prob.mean(axis=0), prior - prior.mean(), "naive_bayes"
    if hasattr(classifier, "coef_") and hasattr(classifier, "intercept_"):
        return (np.atleast_2d(np.asarray(classifier.coef_, dtype=float)),
                np.atleast_1d(np.asarray(classifier.intercept_, dtype=float)), "linear")
    return None


def _is_tree_model(classifier: Any) -> bool:
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.tree import DecisionTreeClassifier

    return isinstance(classifier, RandomForestClassifier | ExtraTreesClassifier
                      | GradientBoostingClassifier | HistGradientBoostingClassifier
                      | DecisionTreeClassifier)


def _pipeline_parts(model: Any) -> tuple[Any, Any] | None:
    """(preprocess, classify) of a catalogue pipeline, None for models that are not one."""
    try:
        pipeline = fitted_pipeline(model)
    except TypeError:
        return None
    steps = pipeline.named_steps
    if "preprocess" not in steps or "classify" not in steps:
        return None
    return steps["preprocess"], steps["classify"]


def explainer_kind(model: Any, spec: DatasetSpec) -> ExplainerKind:
    """Which SHAP explainer fits `model` (see the module docstring)."""
    parts = _pipeline_parts(model)
    if parts is None:
        return "permutation"
    classifier = parts[1]
    if _linear_weights(classifier) is not None:
        return "linear"
    if spec.kind != "text" and _is_tree_model(classifier):
        return "tree"
    return "permutation"


def output_columns(preprocess: Any, width: int) -> np.ndarray:
    """The input column behind each output of a fitted ColumnTransformer (one-hot columns and
    text tokens map to the column they came from)."""
    columns = np.empty(width, dtype=object)
    columns[:] = None
    for branch, transformer, selected in preprocess.transformers_:
        part = preprocess.output_indices_.get(branch)
        if part is None or part.stop == part.start or isinstance(selected, str):
            continue
        selected = [str(s) for s in selected]
        size = part.stop - part.start
        if len(selected) == 1:
            columns[part] = selected[0]
            continue
        encoder = _one_hot_of(transformer)
        if encoder is not None and sum(len(c) for c in encoder.categories_) == size:
            columns[part] = np.repeat(selected, [len(c) for c in encoder.categories_])
        elif size == len(selected):
            columns[part] = selected
        else:
            columns[part] = branch
    if any(c is None for c in columns):
        raise ExplanationError("the preprocessor has outputs that come from no input column")
    return columns


def _one_hot_of(transformer: Any) -> Any:
    from sklearn.preprocessing import OneHotEncoder

    steps = getattr(transformer, "steps", [(None, transformer)])
    for _, step in steps:
        if isinstance(step, OneHotEncoder) and getattr(step, "drop_idx_", None) is None:
            return step
    return None


def _per_class(values: np.ndarray, base: Any, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """SHAP values as rows x features x classes and base values per class.

    A binary model explained with one output (the second class's margin or log-odds) gets the
    first class as its negation: the margin toward class 0 is minus the margin toward 1.
    """
    base = np.atleast_1d(np.asarray(base, dtype=float))
    if values.ndim == 2:
        if n_classes != 2:
            raise ExplanationError(f"one SHAP output for a {n_classes}-class model")
        values = np.stack([-values, values], axis=2)
        base = np.array([-base[0], base[0]])
    return values, base


# --------------------------------------------------------------------------- the explainer


@dataclass
class ShapExplainer:
    """A SHAP explainer of one fitted model over one background sample, built once, reused.

    `explain(frame)` gives one JSON-ready explanation per row; `global_importance(frame)` the
    mean absolute SHAP value of each input column over the rows (averaged over classes).
    """

    model: Any
    spec: DatasetSpec
    background: pd.DataFrame
    seed: int = 0
    kind: ExplainerKind = field(init=False)
    output: str = field(init=False)
    _explainer: Any = field(init=False, default=None, repr=False)
    _columns: np.ndarray | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        if self.background.empty:
            raise ExplanationError("SHAP needs at least one background row")
        self.background = feature_frame(self.background, self.spec).reset_index(drop=True)
        self.kind = explainer_kind(self.model, self.spec)
        self.labels = [str(c) for c in self.model.classes_]
        if self.kind == "linear":
            self._build_linear()
        elif self.kind == "tree":
            try:
                self._build_tree()
            except Exception:   # a tree model shap cannot read: the model-agnostic one
                self.kind = "permutation"
        if self.kind == "permutation":
            self.output = "permutation"

    # ---------------------------------------------------------------- building

    def _build_linear(self) -> None:
        import shap

        preprocess, classifier = _pipeline_parts(self.model)  # type: ignore[misc]
        weights = _linear_weights(classifier)
        assert weights is not None
        coef, intercept, self.output = weights
        self._inner = [str(c) for c in classifier.classes_]
        sample = background_sample(self.background, self.spec, BACKGROUND_ROWS, seed=self.seed)
        transformed = preprocess.transform(sample)
        self._columns = output_columns(preprocess, transformed.shape[1])
        self._explainer = shap.LinearExplainer((coef, intercept), transformed)

    def _build_tree(self) -> None:
        import shap

        preprocess, classifier = _pipeline_parts(self.model)  # type: ignore[misc]
        self._inner = [str(c) for c in classifier.classes_]
        width = _dense(preprocess.transform(self.background.head(1))).shape[1]
        self._columns = output_columns(preprocess, width)
        # the trees' own training covers as the background ("tree_path_dependent"): exact
        # for every tree model here, where interventional SHAP of multiclass histogram
        # boosting fails shap's own additivity check (shap 0.51)
        self._explainer = shap.TreeExplainer(classifier,
                                             feature_perturbation="tree_path_dependent")
        self.output = ("tree_log_odds" if type(classifier).__name__.endswith("BoostingClassifier")
                       else "tree_probability")

    # ---------------------------------------------------------------- values

    def values(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(rows x features x classes SHAP values, base value per class, feature names) over
        the explainer's own features: input columns (tabular), transformed features (linear,
        tree). Classes are in the order of `self.model.classes_`."""
        x = feature_frame(frame, self.spec)
        if self.kind == "permutation":
            return self._permutation_values(x)
        preprocess, _ = _pipeline_parts(self.model)  # type: ignore[misc]
        transformed = preprocess.transform(x)
        if self.kind == "tree":
            transformed = _dense(transformed)
        try:
            raw = self._explainer.shap_values(transformed)
        except Exception:   # shap's additivity check refused the tree model: model-agnostic
            if self.kind != "tree":
                raise
            self.kind, self.output = "permutation", "permutation"
            return self._permutation_values(x)
        raw = np.stack(raw, axis=2) if isinstance(raw, list) else np.asarray(raw)
        values, base = _per_class(raw, self._explainer.expected_value, len(self._inner))
        order = [self._inner.index(label) for label in self.labels]
        names = [str(c) for c in self._columns] if self._columns is not None else []
        return values[:, :, order], base[order], names

    def _permutation_values(self, x: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[str]]:
        import shap

        features = list(self.spec.feature_names)
        numeric = set(self.spec.features_of_type("numeric"))
        background = background_sample(self.background, self.spec,
                                       PERMUTATION_BACKGROUND_ROWS, seed=self.seed)
        tables = {name: _value_table(pd.concat([background[name], x[name]])) for name in features}

        def predict(codes: np.ndarray) -> np.ndarray:
            frame = pd.DataFrame({
                name: (tables[name][codes[:, j].astype(int)].astype(float) if name in numeric
                       else tables[name][codes[:, j].astype(int)])
                for j, name in enumerate(features)})
            return np.asarray(self.model.predict_proba(feature_frame(frame, self.spec)))

        codes_bg = _codes(background, features, tables)
        explainer = shap.PermutationExplainer(
            predict, shap.maskers.Independent(codes_bg, max_samples=len(codes_bg)),
            seed=self.seed)
        evals = PERMUTATIONS * (2 * len(features) + 1)
        result = explainer(_codes(x, features, tables), max_evals=evals, batch_size=evals,
                           silent=True)
        values = np.asarray(result.values, dtype=float)
        base = np.asarray(result.base_values, dtype=float)
        return values, (base[0] if base.ndim > 1 else base), features

    # ---------------------------------------------------------------- explanations

    def explain(self, frame: pd.DataFrame) -> list[dict[str, Any]]:
        """One explanation per row of `frame` (raw features), in its order."""
        if frame.empty:
            return []
        x = feature_frame(frame, self.spec).reset_index(drop=True)
        if self.spec.kind == "text":
            return self._explain_texts(x)
        proba = np.asarray(self.model.predict_proba(x), dtype=float)
        chosen = decided_classes(self.model, proba)
        values, base, names = self.values(x)
        per_input = _by_column(values, names, self.spec.feature_names)
        out = []
        for r, c in enumerate(chosen):
            contributions = [
                {"feature": name, "value": x.at[r, name], "contribution": per_input[name][r, c]}
                for name in per_input]
            contributions.sort(key=lambda item: -abs(item["contribution"]))
            out.append(self._header(proba[r], c, base[c], values[r, :, c].sum())
                       | {"contributions": contributions})
        return [to_json(e) for e in out]

    def _header(self, proba: np.ndarray, c: int, base: float, total: float) -> dict[str, Any]:
        return {"method": f"shap:{self.kind}", "output": OUTPUTS[self.output],
                "predicted_class": self.labels[c], "probability": float(proba[c]),
                "base_value": float(base), "output_value": float(base + total)}

    def _explain_texts(self, x: pd.DataFrame) -> list[dict[str, Any]]:
        proba = np.asarray(self.model.predict_proba(x), dtype=float)
        chosen = decided_classes(self.model, proba)
        if self.kind != "linear":
            return [self._explain_text_by_words(x.iloc[[r]].reset_index(drop=True),
                                                proba[r], int(c))
                    for r, c in enumerate(chosen)]
        preprocess, _ = _pipeline_parts(self.model)  # type: ignore[misc]
        words, columns, is_word = word_table(preprocess)
        out = []
        for start in range(0, len(x), TEXT_CHUNK):
            part = x.iloc[start:start + TEXT_CHUNK]
            values, base, _ = self.values(part)
            present = sparse.csr_matrix(preprocess.transform(part))
            for r in range(len(part)):
                c = int(chosen[start + r])
                phi = values[r, :, c]
                here = np.zeros(len(phi), dtype=bool)
                here[present[r].indices[present[r].data != 0]] = True
                entries: list[dict[str, Any]] = [{"word": str(words[j]), "column": str(columns[j]),
                            "contribution": float(phi[j])}
                           for j in np.flatnonzero(here & is_word)]
                entries.sort(key=lambda e: -e["contribution"])
                header = self._header(proba[start + r], c, base[c], phi.sum())
                out.append(to_json(header | {
                    "predicted": header["predicted_class"],
                    "toward_predicted": [e for e in entries if e["contribution"] > 0][:TOP_WORDS],
                    "against_predicted": [e for e in reversed(entries)
                                          if e["contribution"] < 0][:TOP_WORDS],
                    "absent_words": float(phi[~here & is_word].sum()),
                    "other_features": float(phi[~is_word].sum()),
                }))
        return out

    def _explain_text_by_words(self, row: pd.DataFrame, proba: np.ndarray,
                               c: int) -> dict[str, Any]:
        """Model-agnostic text SHAP: the features are the article's distinct words (at most
        MAX_WORDS, the most frequent), a masked word is removed from every text column."""
        import shap

        text_columns = self.spec.features_of_type("text")
        counts: dict[tuple[str, str], int] = {}
        for column in text_columns:
            for word in WORD.findall(str(row.at[0, column] or "")):
                key = (column, word.lower())
                counts[key] = counts.get(key, 0) + 1
        varied = sorted(counts, key=lambda k: (-counts[k], k))[:MAX_WORDS]
        header = self._header(proba, c, float("nan"), 0.0)
        header.update(predicted=header["predicted_class"], toward_predicted=[],
                      against_predicted=[])
        if not varied:
            return to_json(header)

        def predict(keep: np.ndarray) -> np.ndarray:
            frames = []
            for mask in keep.astype(bool):
                removed = {k for k, kept in zip(varied, mask, strict=True) if not kept}
                variant = row.copy()
                for column in text_columns:
                    gone = {w for col, w in removed if col == column}
                    if gone:
                        variant.at[0, column] = _without(str(variant.at[0, column] or ""),
                                                         gone)
                frames.append(variant)
            batch = pd.concat(frames, ignore_index=True)
            return np.asarray(self.model.predict_proba(batch))[:, c]

        explainer = shap.PermutationExplainer(
            predict, shap.maskers.Independent(np.zeros((1, len(varied)))), seed=self.seed)
        result = explainer(np.ones((1, len(varied))),
                           max_evals=PERMUTATIONS * (2 * len(varied) + 1), silent=True)
        phi = np.asarray(result.values)[0]
        base = float(np.asarray(result.base_values).ravel()[0])
        entries: list[dict[str, Any]] = [
            {"word": w, "column": col, "contribution": float(v)}
                   for (col, w), v in zip(varied, phi, strict=True)]
        entries.sort(key=lambda e: -e["contribution"])
        header.update(base_value=base, output_value=base + float(phi.sum()),
                      toward_predicted=[e for e in entries if e["contribution"] > 0][:TOP_WORDS],
                      against_predicted=[e for e in reversed(entries)
                                         if e["contribution"] < 0][:TOP_WORDS])
        return to_json(header)

    # ---------------------------------------------------------------- global

    def global_importance(self, frame: pd.DataFrame, *, rows: int = 200) -> list[dict[str, Any]]:
        """Mean |SHAP value| of each input column over at most `rows` rows of `frame` (drawn
        with the seed), averaged over classes, most important first. For text models the
        explained features are the words: each row names a word and its column."""
        limit = rows if self.kind != "permutation" else min(rows, 30)
        sample = background_sample(frame, self.spec, limit, seed=self.seed)
        if sample.empty:
            return []
        if self.spec.kind == "text" and self.kind == "permutation":
            return self._global_words_by_permutation(sample)
        values, _, names = self.values(sample)
        magnitude = np.abs(values).mean(axis=(0, 2))
        if self.spec.kind == "text":
            preprocess, _ = _pipeline_parts(self.model)  # type: ignore[misc]
            words, columns, _ = word_table(preprocess)
            order = np.argsort(-magnitude, kind="stable")[:30]
            return to_json([{"feature": f"{words[j]} ({columns[j]})", "word": str(words[j]),
                             "column": str(columns[j]), "importance": magnitude[j]}
                            for j in order])
        totals: dict[str, float] = {}
        for name, value in zip(names, magnitude, strict=True):
            totals[name] = totals.get(name, 0.0) + float(value)
        out: list[dict[str, Any]] = [{"feature": name, "importance": value}
                                     for name, value in totals.items()]
        out.sort(key=lambda item: -item["importance"])
        return to_json(out)

    def _global_words_by_permutation(self, sample: pd.DataFrame) -> list[dict[str, Any]]:
        totals: dict[tuple[str, str], float] = {}
        for explanation in self.explain(sample.head(10)):
            for entry in [*explanation["toward_predicted"], *explanation["against_predicted"]]:
                key = (entry["word"], entry["column"])
                totals[key] = totals.get(key, 0.0) + abs(entry["contribution"]) / 10
        ranked = sorted(totals.items(), key=lambda kv: -float(kv[1]))[:30]
        return to_json([{"feature": f"{w} ({col})", "word": w, "column": col, "importance": v}
                        for (w, col), v in ranked])


# --------------------------------------------------------------------------- small pieces


def _without(text: str, words: set[str]) -> str:
    """`text` with every occurrence of `words` (lower case) removed."""
    return WORD.sub(lambda m: "" if m.group(0).lower() in words else m.group(0), text)


def word_table(preprocess: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per output of a fitted ColumnTransformer: its name (the word or n-gram for a word
    vectoriser), its input column, and whether it is a word feature."""
    from sklearn.feature_extraction.text import CountVectorizer

    total = max((s.stop for s in preprocess.output_indices_.values()), default=0)
    names = np.empty(total, dtype=object)
    columns = output_columns(preprocess, total)
    is_word = np.zeros(total, dtype=bool)
    for branch, transformer, _ in preprocess.transformers_:
        part = preprocess.output_indices_.get(branch)
        if part is None or part.stop == part.start:
            continue
        last = transformer.steps[-1][1] if hasattr(transformer, "steps") else transformer
        if isinstance(last, CountVectorizer):     # TfidfVectorizer is one too
            names[part] = last.get_feature_names_out()
            is_word[part] = last.analyzer == "word"
        else:
            names[part] = [f"{branch}[{i}]" for i in range(part.stop - part.start)]
    return names, columns, is_word


def _dense(values: Any) -> np.ndarray:
    return np.asarray(values.toarray() if sparse.issparse(values) else values, dtype=float)


def _by_column(values: np.ndarray, names: Sequence[str],
               inputs: Sequence[str]) -> dict[str, np.ndarray]:
    """Sum the SHAP values of the features that come from the same input column."""
    out: dict[str, np.ndarray] = {}
    index = np.asarray(names, dtype=object)
    for name in inputs:
        mask = index == name
        if mask.any():
            out[name] = values[:, mask, :].sum(axis=1)
    return out


def _value_table(values: pd.Series) -> np.ndarray:
    """The distinct values of a column (missing once, as None), as an object array."""
    seen: dict[Any, None] = {}
    for value in values.tolist():
        seen.setdefault(None if value is None or value != value else value, None)
    return np.array(list(seen), dtype=object)


def _codes(frame: pd.DataFrame, features: Sequence[str],
           tables: dict[str, np.ndarray]) -> np.ndarray:
    """Each value replaced by its position in its column's table (floats, for the masker)."""
    out = np.zeros((len(frame), len(features)))
    for j, name in enumerate(features):
        position = {value: i for i, value in enumerate(tables[name].tolist())}
        out[:, j] = [position[None if v is None or v != v else v] for v in frame[name].tolist()]
    return out
