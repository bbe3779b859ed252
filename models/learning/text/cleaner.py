"""Cleaning text: NLTK resources from the package, `TextCleaner` and `TextStats`.

Nothing here downloads: NLTK's English stop words ship inside the package
(`models/resources/nltk_data`, appended to `nltk.data.path` so a user's own NLTK_DATA wins);
WordNet does not, and asking for lemmatisation without it raises `MissingNLTKDataError` saying
how to get it. Both transformers live inside saved pipelines, so their module path is part of
every text artifact (see models/registry/legacy_names.py).

NLTK is imported on first use (`nltk_module`), not with this module: the catalogue imports
this module in every training task and serving worker, tabular ones too, and NLTK's import
costs about 0.2 s of each fresh process (measured: a training task's import floor).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import Tags
from sklearn.utils.validation import check_is_fitted

from warehouse.errors import OvernightError

if TYPE_CHECKING:
    from nltk.stem import StemmerI, WordNetLemmatizer
    from nltk.tokenize import RegexpTokenizer

NLTK_DATA = Path(__file__).parents[2] / "resources" / "nltk_data"


@cache
def nltk_module() -> ModuleType:
    """NLTK, imported once, with the packaged data appended to its search path."""
    import nltk

    if str(NLTK_DATA) not in nltk.data.path:
        nltk.data.path.append(str(NLTK_DATA))
    return nltk


class TextError(OvernightError, ValueError):
    """Text input or a text setting that cannot work (names the value and the choices)."""


class MissingNLTKDataError(OvernightError, LookupError):
    """An NLTK resource the chosen settings need is not installed (says how to get it)."""


# --------------------------------------------------------------------------- NLTK resources


def load_stopwords(language: str = "english") -> frozenset[str]:
    """NLTK's stop-word list, read through `nltk.corpus.stopwords` (the packaged copy or yours)."""
    nltk = nltk_module()
    try:
        return frozenset(nltk.corpus.stopwords.words(language))
    except LookupError as error:
        raise MissingNLTKDataError(
            "NLTK's stopwords corpus was not found on nltk.data.path "
            f"({', '.join(nltk.data.path)}); overnight ships the English list in "
            f"{NLTK_DATA}: reinstall the package if it is missing, or run "
            "`python -m nltk.downloader stopwords` on a machine with network and point "
            "NLTK_DATA at the folder it writes"
        ) from error
    except OSError as error:
        raise MissingNLTKDataError(
            f"no {language!r} stop-word list in NLTK's stopwords corpus; the packaged copy has "
            "only 'english' (download the full corpus with `python -m nltk.downloader "
            "stopwords` and point NLTK_DATA at it for other languages)"
        ) from error


def require_wordnet() -> None:
    """Raise `MissingNLTKDataError` unless NLTK can find the WordNet corpus."""
    nltk = nltk_module()
    try:
        nltk.data.find("corpora/wordnet")
    except LookupError as error:
        raise MissingNLTKDataError(
            "lemmatize=True needs NLTK's WordNet corpus, which overnight does not ship and "
            "which was not found on nltk.data.path; run `python -m nltk.downloader wordnet` "
            "on a machine with network (copy the nltk_data folder over if this one has none) "
            "and point NLTK_DATA at the folder that holds corpora/wordnet, or use "
            "stem='snowball' instead"
        ) from error


@cache
def _stemmer(name: str) -> StemmerI:
    stem = nltk_module().stem
    return stem.SnowballStemmer("english") if name == "snowball" else stem.PorterStemmer()


@cache
def _lemmatizer() -> WordNetLemmatizer:
    return nltk_module().stem.WordNetLemmatizer()


@cache
def _tokenizer() -> RegexpTokenizer:
    """Words (letters, inner apostrophes), numbers (with decimal or thousands marks), single
    symbols."""
    from nltk.tokenize import RegexpTokenizer

    nltk_module()
    return RegexpTokenizer(TOKEN_PATTERN)


# --------------------------------------------------------------------------- text cleaning

TOKEN_PATTERN = r"[^\W\d_]+(?:'[^\W\d_]+)*|\d+(?:[.,:]\d+)*|[^\w\s]"
CLAUSE_PUNCTUATION = frozenset(".,:;!?")
NEGATION_WORDS = frozenset({"not", "no", "never", "nor", "cannot"})
NEGATION_PREFIX = "NOT_"
STEMMERS = ("snowball", "porter")


def _is_negation(word: str) -> bool:
    lower = word.lower()
    return lower in NEGATION_WORDS or lower.endswith("n't")


def texts_of(X: Any) -> list[str]:
    """A 1-d array, list, Series or one-column frame of texts as strings (missing -> "")."""
    if isinstance(X, str):
        raise TextError("expected an iterable of texts, got one string; wrap it in a list")
    if isinstance(X, pd.DataFrame):
        if X.shape[1] != 1:
            raise TextError(f"expected one text column, got {X.shape[1]}")
        values = X.iloc[:, 0]
    else:
        array = np.asarray(X, dtype=object)
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim != 1:
            raise TextError(f"expected a 1-d array of texts, got shape {array.shape}")
        values = pd.Series(array, dtype=object)
    return values.fillna("").astype(str).tolist()


class _TextTransformer(TransformerMixin, BaseEstimator):
    """Declares the input both transformers take: texts, as a 1-d array (or one column)."""

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        return tags


class TextCleaner(_TextTransformer):
    """Cleans texts into space-joined tokens for a vectoriser; every step can be switched off.

    In order: lower-case; tokenise (NLTK `RegexpTokenizer`, no data needed; curly apostrophes
    normalised); mark negation: after "not", "no", "never", "nor", "cannot" or an "n't" word,
    tokens get a "NOT_" prefix until the next clause punctuation (. , : ; ! ?); the negation
    word itself is kept ("n't" words become "not") even when stop words are removed; strip
    numbers and punctuation; drop stop words (NLTK's list, checked without the prefix);
    lemmatise (WordNet) and/or stem (Snowball or Porter). Letters outside ASCII are kept.
    "This is not good, but fine" -> "not NOT_good fine".
    """

    def __init__(self, lowercase: bool = True, strip_numbers: bool = True,
                 strip_punctuation: bool = True, remove_stopwords: bool = True,
                 stem: str | None = "snowball", lemmatize: bool = False,
                 mark_negation: bool = True, language: str = "english") -> None:
        self.lowercase = lowercase
        self.strip_numbers = strip_numbers
        self.strip_punctuation = strip_punctuation
        self.remove_stopwords = remove_stopwords
        self.stem = stem
        self.lemmatize = lemmatize
        self.mark_negation = mark_negation
        self.language = language

    def fit(self, X: Any = None, y: Any = None) -> TextCleaner:
        """Check the settings and load the NLTK data they need (the stop words are kept)."""
        if self.stem is not None and self.stem not in STEMMERS:
            raise TextError(f"stem must be one of {', '.join(STEMMERS)} or None, got {self.stem!r}")
        if self.lemmatize:
            require_wordnet()
        self.stopwords_ = load_stopwords(self.language) if self.remove_stopwords else frozenset()
        return self

    def transform(self, X: Any) -> np.ndarray:
        """A 1-d object array of cleaned texts, one per input text."""
        check_is_fitted(self, "stopwords_")
        normalise = self._normaliser()
        return np.array([self._clean(text, normalise) for text in texts_of(X)], dtype=object)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """One column in, one column out."""
        return np.asarray(input_features if input_features is not None else ["text"],
                          dtype=object)

    def _normaliser(self) -> Callable[[str], str]:
        """Lemmatise and/or stem a word, cached for the call (a vocabulary is small)."""
        steps: list[Callable[[str], str]] = []
        if self.lemmatize:
            steps.append(_lemmatizer().lemmatize)
        if self.stem is not None:
            steps.append(_stemmer(self.stem).stem)
        memo: dict[str, str] = {}

        def normalise(word: str) -> str:
            result = memo.get(word)
            if result is None:
                result = word
                for step in steps:
                    result = step(result)
                memo[word] = result
            return result

        return normalise

    def _clean(self, text: str, normalise: Callable[[str], str]) -> str:
        if self.lowercase:
            text = text.lower()
        out: list[str] = []
        negated = False
        for token in _tokenizer().tokenize(text.replace("\u2019", "'")):
            first = token[0]
            if not first.isalnum():
                if first in CLAUSE_PUNCTUATION:
                    negated = False
                if not self.strip_punctuation:
                    out.append(token)
            elif first.isdigit():
                if not self.strip_numbers:
                    out.append(NEGATION_PREFIX + token if negated else token)
            elif self.mark_negation and _is_negation(token):
                negated = True
                out.append("not" if token.lower().endswith("n't") else token)
            elif token.lower() not in self.stopwords_:
                word = normalise(token)
                if word:
                    out.append(NEGATION_PREFIX + word if negated else word)
        return " ".join(out)


def _lexicon(words: str) -> frozenset[str]:
    return frozenset(words.split())


POSITIVE_WORDS = _lexicon(
    "good great excellent positive success successful win wins won gain gains growth improve "
    "improved improvement strong record best better happy praise praised benefit benefits "
    "boost boosted recover recovery rise rising hope hopeful safe support celebrate"
)
NEGATIVE_WORDS = _lexicon(
    "bad poor negative fail failed failure loss losses lose lost decline declined weak worst "
    "worse crisis risk risks fear fears concern concerns threat attack crash collapse fall "
    "falling problem problems scandal criticism criticised death deaths warning"
)
WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")


def sentiment(text: str) -> float:
    """A small-lexicon sentiment score in [-1, 1]; a negation flips words until punctuation."""
    positive, negative = _polar_counts(text)
    total = positive + negative
    return (positive - negative) / total if total else 0.0


def _polar_counts(text: str) -> tuple[int, int]:
    positive = negative = 0
    negated = False
    for token in _tokenizer().tokenize(text.lower().replace("\u2019", "'")):
        if token in CLAUSE_PUNCTUATION:
            negated = False
        elif _is_negation(token):
            negated = True
        elif token in POSITIVE_WORDS or token in NEGATIVE_WORDS:
            if (token in POSITIVE_WORDS) != negated:
                positive += 1
            else:
                negative += 1
    return positive, negative


class TextStats(_TextTransformer):
    """Shape features of one text column, all non-negative and roughly in 0..1.

    log characters and log words (both / 10), mean word length (/ 10), share of capital
    letters and of digits among characters, and the shares of words the sentiment lexicon
    reads as positive and negative (see `sentiment`).
    """

    FEATURES = ("log_chars", "log_words", "mean_word_length", "capital_share", "digit_share",
                "positive_share", "negative_share")

    def fit(self, X: Any = None, y: Any = None) -> TextStats:
        """Nothing to learn; marks the transformer fitted."""
        self.n_features_out_ = len(self.FEATURES)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """One row of FEATURES per text."""
        check_is_fitted(self, "n_features_out_")
        return np.array([self._stats(text) for text in texts_of(X)],
                        dtype=float).reshape(-1, len(self.FEATURES))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray(self.FEATURES, dtype=object)

    @staticmethod
    def _stats(text: str) -> list[float]:
        chars = len(text)
        words = WORD.findall(text)
        letters = sum(len(w) for w in words)
        positive, negative = _polar_counts(text)
        per_word = max(len(words), 1)
        per_char = max(chars, 1)
        return [
            math.log1p(chars) / 10,
            math.log1p(len(words)) / 10,
            letters / per_word / 10,
            sum(c.isupper() for c in text) / per_char,
            sum(c.isdigit() for c in text) / per_char,
            positive / per_word,
            negative / per_word,
        ]


