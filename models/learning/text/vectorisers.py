"""Named text vectorisers and the text preprocessor of a spec (headline weighted up).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from models.data.spec import DatasetSpec
from models.learning.preprocessing import as_text, tabular_branches
from models.learning.text.cleaner import TextCleaner, TextError, TextStats

# --------------------------------------------------------------------------- vectorisers

MAX_FEATURES = 50_000


def _raw(vectoriser: CountVectorizer) -> Pipeline:
    """A vectoriser reading one raw text column."""
    return Pipeline([
        ("as_text", FunctionTransformer(as_text, feature_names_out="one-to-one")),
        ("vectorise", vectoriser),
    ])


def tfidf_unigram() -> Pipeline:
    return _raw(TfidfVectorizer(sublinear_tf=True, min_df=2, max_features=MAX_FEATURES))


def tfidf_bigram() -> Pipeline:
    return _raw(TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2,
                                max_features=MAX_FEATURES))


def counts() -> Pipeline:
    return _raw(CountVectorizer(min_df=2, max_features=MAX_FEATURES))


def tfidf_nltk() -> Pipeline:
    """TF-IDF over `TextCleaner` tokens (stems and NOT_ marks kept as they are)."""
    return Pipeline([
        ("clean", TextCleaner()),
        ("vectorise", TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2,
                                      token_pattern=r"\S+", lowercase=False,
                                      max_features=MAX_FEATURES)),
    ])


def char_ngrams() -> Pipeline:
    return _raw(TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True,
                                min_df=2, max_features=MAX_FEATURES))


VECTORISERS: dict[str, Callable[[], Pipeline]] = {
    "tfidf_unigram": tfidf_unigram,
    "tfidf_bigram": tfidf_bigram,
    "counts": counts,
    "tfidf_nltk": tfidf_nltk,
    "char_ngrams": char_ngrams,
}


def build_text_preprocessor(spec: DatasetSpec, vectoriser: str = "tfidf_bigram",
                            headline_weight: float = 2.0, *, include_other: bool = False,
                            text_stats: bool = False) -> ColumnTransformer:
    """The ColumnTransformer of a text spec: the vectoriser on every text column.

    The first text column is the headline: its block is multiplied by `headline_weight`.
    Numeric and categorical columns are dropped unless `include_other`, which passes them
    through the `models.learning.preprocessing` pipelines (scaled numbers can be negative, which
    `naive_bayes` refuses). `text_stats` adds a `TextStats` block per text column.
    """
    if vectoriser not in VECTORISERS:
        raise TextError(f"unknown vectoriser {vectoriser!r}; known: {', '.join(VECTORISERS)}")
    if not headline_weight > 0:
        raise TextError(f"headline_weight must be positive, got {headline_weight}")
    text = spec.features_of_type("text")
    if not text:
        raise TextError(f"dataset {spec.name!r} has no text column")
    branches: list[tuple[str, Any, list[str]]] = [
        (f"text_{column}", VECTORISERS[vectoriser](), [column]) for column in text
    ]
    if text_stats:
        branches.extend((f"stats_{column}", TextStats(), [column]) for column in text)
    if include_other:
        branches.extend(tabular_branches(spec))
    return ColumnTransformer(branches, remainder="drop", sparse_threshold=1.0,
                             transformer_weights={f"text_{text[0]}": headline_weight})


