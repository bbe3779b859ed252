"""Text classification: cleaning, vectorisers, text algorithms and word-level explanations.

What it provides:

- `TextCleaner`, a scikit-learn transformer (lower-case, strip numbers and punctuation,
  tokenise, mark negations, drop stop words, stem or lemmatise), and `TextStats` (length,
  shape and a small lexicon sentiment), both usable inside the saved `Pipeline`;
- `build_text_preprocessor`, one `ColumnTransformer` per text spec built from a named
  vectoriser (`VECTORISERS`), the first text column (the headline) weighted up;
- the text algorithms `naive_bayes`, `linear_svm` and `sgd`, registered in
  `models.catalogue` at import, and `build_text_model`;
- `compare_vectorisers`, `top_words`, `explain_article` and `common_confusions`.

What it must not do: download anything. NLTK's English stop-word list ships inside the package
(`models/resources/nltk_data`, appended to `nltk.data.path` so a user's own NLTK_DATA wins);
WordNet does not, and asking for lemmatisation without it raises `MissingNLTKDataError` saying
how to get it. It writes nothing: persisting models and results is the caller's job.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from pathlib import Path
from time import perf_counter
from typing import Any

import nltk
import numpy as np
import optuna
import pandas as pd
from nltk.stem import PorterStemmer, SnowballStemmer, StemmerI
from nltk.tokenize import RegexpTokenizer
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import train_test_split
from sklearn.naive_bayes import MultinomialNB
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.svm import LinearSVC
from sklearn.utils.validation import check_is_fitted

from models.catalogue import Algorithm, build_model, register_algorithm
from models.evaluation import evaluate
from models.features import as_text, tabular_branches
from models.spec import DatasetSpec, TaskKind
from warehouse.errors import OvernightError

NLTK_DATA = Path(__file__).parent / "resources" / "nltk_data"
if str(NLTK_DATA) not in nltk.data.path:
    nltk.data.path.append(str(NLTK_DATA))


class TextError(OvernightError, ValueError):
    """Text input or a text setting that cannot work (names the value and the choices)."""


class MissingNLTKDataError(OvernightError, LookupError):
    """An NLTK resource the chosen settings need is not installed (says how to get it)."""


# --------------------------------------------------------------------------- NLTK resources


def load_stopwords(language: str = "english") -> frozenset[str]:
    """NLTK's stop-word list, read through `nltk.corpus.stopwords` (the packaged copy or yours)."""
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
    return SnowballStemmer("english") if name == "snowball" else PorterStemmer()


@cache
def _lemmatizer() -> nltk.stem.WordNetLemmatizer:
    return nltk.stem.WordNetLemmatizer()


# --------------------------------------------------------------------------- text cleaning

# Words (letters, inner apostrophes), numbers (with decimal or thousands marks), single symbols.
TOKENIZER = RegexpTokenizer(r"[^\W\d_]+(?:'[^\W\d_]+)*|\d+(?:[.,:]\d+)*|[^\w\s]")
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


class TextCleaner(TransformerMixin, BaseEstimator):
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
        for token in TOKENIZER.tokenize(text.replace("\u2019", "'")):
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
    for token in TOKENIZER.tokenize(text.lower().replace("\u2019", "'")):
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


class TextStats(TransformerMixin, BaseEstimator):
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
    through the `models.features` pipelines (scaled numbers can be negative, which
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


# --------------------------------------------------------------------------- algorithms

TEXT: frozenset[TaskKind] = frozenset({"text"})


def calibrated_linear_svm(C: float = 1.0, class_weight: Any = None,
                          random_state: int | None = None) -> CalibratedClassifierCV:
    """A linear SVM with probabilities from sigmoid calibration on internal folds."""
    svm = LinearSVC(C=C, class_weight=class_weight, random_state=random_state)
    return CalibratedClassifierCV(svm, method="sigmoid", cv=3, ensemble=False)


def _nb_space(trial: optuna.Trial) -> dict[str, Any]:
    return {"alpha": trial.suggest_float("alpha", 1e-3, 3.0, log=True)}


def _linear_svm_space(trial: optuna.Trial) -> dict[str, Any]:
    return {"C": trial.suggest_float("C", 1e-2, 1e2, log=True)}


def _sgd_space(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "loss": trial.suggest_categorical("loss", ["log_loss", "modified_huber"]),
        "alpha": trial.suggest_float("alpha", 1e-6, 1e-2, log=True),
    }


TEXT_ALGORITHMS: tuple[Algorithm, ...] = (
    Algorithm("naive_bayes", TEXT, MultinomialNB, {"alpha": 0.1}, _nb_space,
              interpretability=0.9,
              description="multinomial naive Bayes over word weights"),
    Algorithm("linear_svm", TEXT, calibrated_linear_svm, {"C": 0.5}, _linear_svm_space,
              class_weight=True, seeded=True, interpretability=0.8,
              description="linear SVM with sigmoid-calibrated probabilities"),
    Algorithm("sgd", TEXT, SGDClassifier,
              {"loss": "log_loss", "alpha": 1e-4, "max_iter": 500, "tol": 1e-4},
              _sgd_space, class_weight=True, seeded=True, interpretability=0.8,
              description="linear model trained by stochastic gradient descent"),
)
for _algorithm in TEXT_ALGORITHMS:
    register_algorithm(_algorithm)


def build_text_model(spec: DatasetSpec, algorithm: str, params: Mapping[str, Any] | None = None,
                     *, vectoriser: str = "tfidf_bigram", headline_weight: float = 2.0,
                     imbalance: str = "none", seed: int = 0) -> BaseEstimator:
    """One unfitted text pipeline: the text preprocessor, then the catalogue's classifier."""
    return build_model(spec, algorithm, params, imbalance=imbalance, seed=seed,
                       preprocessor=build_text_preprocessor(spec, vectoriser, headline_weight))


def class_proba(model: BaseEstimator, X: Any, classes: Sequence[str]) -> np.ndarray:
    """predict_proba with columns in the order of `classes` (0 for a class never seen)."""
    proba = model.predict_proba(X)
    out = np.zeros((proba.shape[0], len(classes)))
    position = {str(c): i for i, c in enumerate(classes)}
    for j, label in enumerate(model.classes_):
        out[:, position[str(label)]] = proba[:, j]
    return out


def compare_vectorisers(frame: pd.DataFrame, spec: DatasetSpec,
                        vectorisers: Sequence[str] = tuple(VECTORISERS),
                        model: str | Sequence[str] = "logistic_regression", seed: int = 0,
                        test_size: float = 0.25, headline_weight: float = 2.0) -> pd.DataFrame:
    """Accuracy, macro F1 and fit/predict seconds per (vectoriser, model), best first.

    Every pair is fitted on the same stratified training split and scored on the held-out
    rest; predict seconds include cleaning and vectorising the held-out texts.
    """
    models = [model] if isinstance(model, str) else list(model)
    X_train, X_test, y_train, y_test = train_test_split(
        frame[spec.feature_names], frame[spec.target].astype(str), test_size=test_size,
        stratify=frame[spec.target].astype(str), random_state=seed,
    )
    rows = []
    for vectoriser in vectorisers:
        for name in models:
            pipeline = build_text_model(spec, name, vectoriser=vectoriser,
                                        headline_weight=headline_weight, seed=seed)
            start = perf_counter()
            pipeline.fit(X_train, y_train)
            fitted = perf_counter()
            proba = class_proba(pipeline, X_test, spec.classes)
            predicted = perf_counter()
            metrics = evaluate(y_test, proba, spec.classes)
            rows.append({
                "vectoriser": vectoriser,
                "model": name,
                "accuracy": metrics["accuracy"],
                "f1_macro": metrics["f1_macro"],
                "fit_seconds": fitted - start,
                "predict_seconds": predicted - fitted,
                "n_train": len(X_train),
                "n_test": len(X_test),
            })
    table = pd.DataFrame(rows)
    return table.sort_values(["accuracy", "f1_macro"], ascending=False, kind="stable",
                             ignore_index=True)


# --------------------------------------------------------------------------- interpretability

MAX_PERTURBED_WORDS = 100
PERTURBED_CHARACTERS = 20_000_000


def _unwrap(model: BaseEstimator) -> Pipeline:
    """The preprocess/classify pipeline inside a decision-rule wrapper (if any)."""
    inner = model
    while not hasattr(inner, "named_steps"):
        if not hasattr(inner, "estimator_"):
            raise TextError(f"expected a fitted text pipeline, got {type(model).__name__}")
        inner = inner.estimator_
    return inner


def _vectoriser_of(transformer: Any) -> CountVectorizer | None:
    last = transformer.steps[-1][1] if isinstance(transformer, Pipeline) else transformer
    return last if isinstance(last, CountVectorizer) else None


def _feature_table(preprocess: ColumnTransformer) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per output feature: its name without prefix, its source column, whether it is a word."""
    total = max((s.stop for s in preprocess.output_indices_.values()), default=0)
    names = np.empty(total, dtype=object)
    columns = np.empty(total, dtype=object)
    is_word = np.zeros(total, dtype=bool)
    for branch, transformer, selected in preprocess.transformers_:
        part = preprocess.output_indices_.get(branch)
        if part is None or part.stop == part.start:
            continue
        vectoriser = _vectoriser_of(transformer)
        if vectoriser is not None:
            names[part] = vectoriser.get_feature_names_out()
            columns[part] = selected[0]
            is_word[part] = vectoriser.analyzer == "word"
        else:
            names[part] = transformer.get_feature_names_out()
            columns[part] = branch
    return names, columns, is_word


def _text_columns(preprocess: ColumnTransformer) -> list[str]:
    return [selected[0] for _, transformer, selected in preprocess.transformers_
            if _vectoriser_of(transformer) is not None]


def _class_weights(classifier: BaseEstimator) -> np.ndarray | None:
    """A (classes x features) matrix whose row differences give each feature's pull.

    Coefficients for linear models (averaged over a calibrated ensemble), centred log
    probabilities for naive Bayes; None for any other model.
    """
    if isinstance(classifier, CalibratedClassifierCV):
        inner = [c.estimator for c in classifier.calibrated_classifiers_]
        if not all(hasattr(e, "coef_") for e in inner):
            return None
        weights = np.mean([e.coef_ for e in inner], axis=0)
    elif hasattr(classifier, "feature_log_prob_"):
        log_prob = classifier.feature_log_prob_
        weights = log_prob - log_prob.mean(axis=0)
    elif hasattr(classifier, "coef_"):
        weights = np.asarray(classifier.coef_)
    else:
        return None
    if weights.shape[0] == 1:  # binary: one row for the second class
        weights = np.vstack([-weights[0], weights[0]]) / 2
    return weights


def _entry(name: str, column: str, value: float, key: str) -> dict[str, Any]:
    return {"word": str(name), "column": str(column), key: float(value)}


def top_words(model: BaseEstimator, n: int = 15) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Per class, the n features pulling hardest toward ("positive") and away ("negative").

    Needs a linear model or naive Bayes. Each entry: word (vectoriser feature, prefix
    stripped), column (its text column) and weight.
    """
    pipeline = _unwrap(model)
    classifier = pipeline.named_steps["classify"]
    weights = _class_weights(classifier)
    if weights is None:
        raise TextError(
            f"top_words needs a linear model or naive Bayes, got {type(classifier).__name__}; "
            "use explain_article for any model"
        )
    names, columns, _ = _feature_table(pipeline.named_steps["preprocess"])
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for label, row in zip(classifier.classes_, weights, strict=True):
        order = np.argsort(row, kind="stable")
        out[str(label)] = {
            "positive": [_entry(names[j], columns[j], row[j], "weight")
                         for j in order[::-1][:n] if row[j] > 0],
            "negative": [_entry(names[j], columns[j], row[j], "weight")
                         for j in order[:n] if row[j] < 0],
        }
    return out


def explain_article(model: BaseEstimator, row: Mapping[str, Any] | pd.DataFrame,
                    n: int = 10) -> dict[str, Any]:
    """Why one article got its class rather than the runner-up, in words it contains.

    Linear models and naive Bayes over word vectorisers ("coefficients"): each feature's
    contribution is its value in the article times (weight[predicted] - weight[runner-up]).
    Other models or character n-grams ("perturbation"): each distinct word is removed from
    every text column in turn and the drop in the predicted-minus-runner-up margin is its
    contribution, all variants in one batch (see `_perturbation`).
    """
    X = row if isinstance(row, pd.DataFrame) else pd.DataFrame([dict(row)])
    if len(X) != 1:
        raise TextError(f"explain_article explains one article, got {len(X)} rows")
    proba = model.predict_proba(X)[0]
    labels = [str(c) for c in model.classes_]
    if len(labels) < 2:
        raise TextError("explain_article needs a model that knows at least two classes")
    first, second = (labels[i] for i in np.argsort(-proba, kind="stable")[:2])
    pipeline = _unwrap(model)
    preprocess = pipeline.named_steps["preprocess"]
    classifier = pipeline.named_steps["classify"]
    weights = _class_weights(classifier)
    vectorisers = [_vectoriser_of(t) for _, t, _ in preprocess.transformers_]
    analyzers = {v.analyzer for v in vectorisers if v is not None}
    if weights is not None and analyzers == {"word"}:
        method = "coefficients"
        inner = [str(c) for c in classifier.classes_]
        pull = weights[inner.index(first)] - weights[inner.index(second)]
        names, columns, is_word = _feature_table(preprocess)
        values = sparse.csr_matrix(preprocess.transform(X))
        values.sum_duplicates()
        keep = is_word[values.indices]
        contributions = [_entry(names[j], columns[j], v * pull[j], "contribution")
                         for j, v in zip(values.indices[keep], values.data[keep], strict=True)]
    else:
        method = "perturbation"
        contributions = _perturbation(model, X, _text_columns(preprocess), first, second)
    contributions.sort(key=lambda e: e["contribution"], reverse=True)
    return {
        "predicted": first,
        "probability": float(proba[labels.index(first)]),
        "runner_up": second,
        "runner_up_probability": float(proba[labels.index(second)]),
        "method": method,
        "toward_predicted": [e for e in contributions if e["contribution"] > 0][:n],
        "toward_runner_up": [e for e in reversed(contributions) if e["contribution"] < 0][:n],
    }


def _margin(model: BaseEstimator, X: pd.DataFrame, first: str, second: str) -> np.ndarray:
    """Per row, how far the model prefers `first` over `second`.

    Decision values when the classifier has them (saturated probabilities, as from a
    modified-Huber SGD, would hide small pulls), else the difference of probabilities.
    """
    pipeline = _unwrap(model)
    classifier = pipeline.named_steps["classify"]
    if hasattr(classifier, "decision_function"):
        labels = [str(c) for c in classifier.classes_]
        scores = np.asarray(pipeline.decision_function(X), dtype=float)
        if scores.ndim == 1:  # binary: the score of the second class
            scores = np.column_stack([-scores, scores])
    else:
        labels = [str(c) for c in model.classes_]
        scores = model.predict_proba(X)
    return scores[:, labels.index(first)] - scores[:, labels.index(second)]


def _perturbation(model: BaseEstimator, X: pd.DataFrame, text_columns: list[str], first: str,
                  second: str) -> list[dict[str, Any]]:
    """Leave-one-word-out contributions to the margin of `first` over `second`.

    The most frequent distinct words are tried, at most MAX_PERTURBED_WORDS and fewer for
    long articles (PERTURBED_CHARACTERS bounds the text re-scored in the batch).
    """
    texts = {c: "" if pd.isna(X[c].iloc[0]) else str(X[c].iloc[0]) for c in text_columns}
    words_in = {c: WORD.findall(t.lower()) for c, t in texts.items()}
    found = Counter(w for words in words_in.values() for w in words)
    size = max(sum(len(t) for t in texts.values()), 1)
    limit = max(1, min(MAX_PERTURBED_WORDS, PERTURBED_CHARACTERS // size))
    words = [w for w, _ in found.most_common(limit)]
    if not words:
        return []
    batch = pd.concat([X] * (len(words) + 1), ignore_index=True)
    for column, text in texts.items():
        batch[column] = [text] + [
            re.sub(rf"(?<!\w){re.escape(w)}(?!\w)", " ", text, flags=re.IGNORECASE)
            for w in words
        ]
    margin = _margin(model, batch, first, second)
    where = {c: set(words) for c, words in words_in.items()}
    return [
        _entry(w, "+".join(c for c in texts if w in where[c]), margin[0] - m, "contribution")
        for w, m in zip(words, margin[1:], strict=True)
    ]


def common_confusions(model: BaseEstimator, frame: pd.DataFrame, spec: DatasetSpec, n: int = 5,
                      examples: int = 2) -> list[dict[str, Any]]:
    """The n most common (true, predicted) mistakes with counts and example headlines.

    Examples are the most confident mistakes of the pair; share is the pair's count over the
    true class's rows.
    """
    X = frame[spec.feature_names]
    truth = frame[spec.target].astype(str).to_numpy()
    predicted = np.asarray(model.predict(X)).astype(str)
    proba = model.predict_proba(X)
    labels = [str(c) for c in model.classes_]
    confidence = proba[np.arange(len(X)), [labels.index(p) for p in predicted]]
    wrong = truth != predicted
    pairs = Counter(zip(truth[wrong], predicted[wrong], strict=True))
    headline = frame[spec.features_of_type("text")[0]].fillna("").astype(str).to_numpy()
    out = []
    for (true, pred), count in sorted(pairs.items(), key=lambda p: (-p[1], p[0]))[:n]:
        rows = np.flatnonzero(wrong & (truth == true) & (predicted == pred))
        rows = rows[np.argsort(-confidence[rows], kind="stable")][:examples]
        out.append({
            "true": true,
            "predicted": pred,
            "count": int(count),
            "share": count / int((truth == true).sum()),
            "examples": [str(h) for h in headline[rows]],
        })
    return out
