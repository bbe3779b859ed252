"""Tests of models.learning.text: the cleaner, packaged NLTK data, text models, comparison,
explanations."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import joblib
import nltk
import numpy as np
import optuna
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline

from models.data.generators import news
from models.data.spec import DatasetSpec, FeatureSpec
from models.learning.catalogue import CATALOGUE, algorithms_for, build_text_model
from models.learning.text import (
    NLTK_DATA,
    MissingNLTKDataError,
    TextCleaner,
    TextError,
    TextStats,
    build_text_preprocessor,
    load_stopwords,
    sentiment,
)
from models.learning.text.explain import (
    class_proba,
    common_confusions,
    explain_article,
    top_words,
)
from models.learning.text_comparison import compare_vectorisers
from warehouse.errors import OvernightError

SPEC = news.SPEC
DAY = date(2024, 5, 1)
ROOT = Path(__file__).resolve().parents[2]
ODD_TEXTS = ["", "   \t\n ", None, float("nan"), "Café Zürich naïve"]


@pytest.fixture(scope="module")
def batch() -> pd.DataFrame:
    """The stable 3000-row batch the accuracy target is measured on."""
    return news.generate(DAY, 3000, 42)


@pytest.fixture(scope="module")
def train(batch: pd.DataFrame) -> pd.DataFrame:
    return batch.iloc[:1500]


@pytest.fixture(scope="module")
def holdout(batch: pd.DataFrame) -> pd.DataFrame:
    return batch.iloc[1500:2000].reset_index(drop=True)


@pytest.fixture(scope="module")
def svm_model(train: pd.DataFrame) -> Pipeline:
    """Calibrated linear SVM over word unigrams and bigrams of the raw text."""
    return build_text_model(SPEC, "linear_svm").fit(train[SPEC.feature_names], train.category)


@pytest.fixture(scope="module")
def nltk_model(train: pd.DataFrame) -> Pipeline:
    """Naive Bayes over TextCleaner tokens."""
    return build_text_model(SPEC, "naive_bayes", vectoriser="tfidf_nltk").fit(
        train[SPEC.feature_names], train.category
    )


def article_tokens(row: pd.Series) -> set[str]:
    """Lower-cased tokens of an article as the default word vectoriser sees them."""
    return set(re.findall(r"\b\w\w+\b", f"{row['headline']} {row['body']}".lower()))


def one_mb_article(frame: pd.DataFrame) -> str:
    text = " ".join(frame.body)
    return (text * (1_000_000 // len(text) + 1))[:1_000_000]


# --------------------------------------------------------------------------- TextCleaner


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("This is not good, but fine", "not NOT_good fine"),
        ("The runners were running quickly!", "runner run quick"),
        ("In 2024, 3 of 45% players scored 2-1 goals.", "player score goal"),
        ("She didn't like the movie; the plot was great.", "not NOT_like NOT_movi plot great"),
        ("Hello!!! @world #2024 ... $$$", "hello world"),
        ("I can\u2019t believe it's not butter", "not NOT_believ not NOT_butter"),
    ],
)
def test_cleaner_on_sentences(text: str, expected: str) -> None:
    assert TextCleaner().fit_transform([text])[0] == expected


def test_cleaner_steps_switch_off() -> None:
    text = ["The 3 ponies are not running, generously"]
    assert TextCleaner(mark_negation=False).fit_transform(text)[0] == "poni run generous"
    assert TextCleaner(stem=None).fit_transform(text)[0] == "ponies not NOT_running generously"
    assert TextCleaner(stem="porter").fit_transform(text)[0] == "poni not NOT_run gener"
    assert TextCleaner(remove_stopwords=False, stem=None, mark_negation=False).fit_transform(
        text)[0] == "the ponies are not running generously"
    kept = TextCleaner(lowercase=False, strip_numbers=False, strip_punctuation=False, stem=None)
    assert kept.fit_transform(["The 3 Ponies are not running, generously"])[0] == (
        "3 Ponies not NOT_running , generously"  # stop words match in any case
    )


def test_cleaner_input_shapes_and_odd_text() -> None:
    cleaner = TextCleaner().fit()
    out = cleaner.transform(ODD_TEXTS)
    assert isinstance(out, np.ndarray) and out.ndim == 1
    assert list(out) == ["", "", "", "", "café zürich naïv"]
    frame = pd.DataFrame({"text": ODD_TEXTS})
    assert list(cleaner.transform(frame)) == list(out)
    assert list(cleaner.transform(frame["text"])) == list(out)
    assert list(cleaner.get_feature_names_out(["text"])) == ["text"]
    with pytest.raises(TextError, match="one string"):
        cleaner.transform("not a list")
    with pytest.raises(TextError, match="one text column"):
        cleaner.transform(pd.DataFrame({"a": ["x"], "b": ["y"]}))


def test_cleaner_follows_the_sklearn_contract() -> None:
    cleaner = TextCleaner(stem="porter", remove_stopwords=False)
    assert clone(cleaner).get_params() == cleaner.get_params()
    assert not hasattr(cleaner, "stopwords_")
    with pytest.raises(NotFittedError):
        cleaner.transform(["text"])
    assert cleaner.fit(["text"]) is cleaner
    with pytest.raises(TextError, match="stem"):
        TextCleaner(stem="lancaster").fit()


def test_cleaner_handles_a_1mb_article(batch: pd.DataFrame) -> None:
    article = one_mb_article(batch)
    start = time.perf_counter()
    cleaned = TextCleaner().fit_transform([article])[0]
    assert time.perf_counter() - start < 5
    assert 0 < len(cleaned) < len(article)


# --------------------------------------------------------------------------- NLTK data


def test_stopwords_come_from_the_packaged_nltk_data() -> None:
    words = load_stopwords()
    assert len(words) == 179 and {"the", "not", "wouldn't"} <= words
    path = [str(p) for p in nltk.data.path]
    assert str(NLTK_DATA) in path
    home = os.path.expanduser("~/nltk_data")
    if home in path:  # appended: the user's own data comes first
        assert path.index(home) < path.index(str(NLTK_DATA))
    with pytest.raises(MissingNLTKDataError, match="klingon"):
        TextCleaner(language="klingon").fit()


def test_cleaner_works_in_a_fresh_process_without_nltk_data(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NLTK_DATA"}
    env["HOME"] = str(tmp_path)
    code = ("from models.learning.text import TextCleaner; "
            "print(TextCleaner(remove_stopwords=True).fit_transform(['This is not the end'])[0])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "not NOT_end"


def test_lemmatize_without_wordnet_is_a_clear_error() -> None:
    try:
        nltk.data.find("corpora/wordnet")
    except LookupError:
        pass
    else:
        pytest.skip("WordNet is installed here")
    with pytest.raises(OvernightError, match=r"WordNet.*nltk\.downloader wordnet.*NLTK_DATA"):
        TextCleaner(lemmatize=True).fit()


# --------------------------------------------------------------------------- fitted pipelines


def test_pipeline_with_cleaner_survives_joblib(nltk_model: Pipeline, holdout: pd.DataFrame,
                                               tmp_path: Path) -> None:
    X = holdout[SPEC.feature_names]
    joblib.dump(nltk_model, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib")
    np.testing.assert_array_equal(loaded.predict_proba(X), nltk_model.predict_proba(X))
    assert list(loaded.predict(X)) == list(nltk_model.predict(X))


@pytest.mark.parametrize("fixture", ["svm_model", "nltk_model"])
def test_odd_articles_get_predictions(fixture: str, request: pytest.FixtureRequest,
                                      batch: pd.DataFrame) -> None:
    model = request.getfixturevalue(fixture)
    odd = pd.DataFrame({"headline": [*ODD_TEXTS, "Big news"],
                        "body": [*ODD_TEXTS[::-1], one_mb_article(batch)]})
    start = time.perf_counter()
    proba = model.predict_proba(odd)
    assert time.perf_counter() - start < 10
    assert proba.shape == (len(odd), len(SPEC.classes))
    assert np.isfinite(proba).all() and np.allclose(proba.sum(axis=1), 1)
    assert set(model.predict(odd)) <= set(SPEC.classes)


def test_preprocessor_weights_the_headline(train: pd.DataFrame) -> None:
    X = train[SPEC.feature_names]
    plain = build_text_preprocessor(SPEC, "tfidf_unigram", 1.0).fit(X)
    heavy = build_text_preprocessor(SPEC, "tfidf_unigram", 3.0).fit(X)
    part = plain.output_indices_["text_headline"]
    rest = plain.output_indices_["text_body"]
    a, b = plain.transform(X).tocsc(), heavy.transform(X).tocsc()
    np.testing.assert_allclose(b[:, part].toarray(), 3 * a[:, part].toarray())
    np.testing.assert_allclose(b[:, rest].toarray(), a[:, rest].toarray())
    with pytest.raises(TextError, match="unknown vectoriser"):
        build_text_preprocessor(SPEC, "word2vec")


def test_mixed_spec_columns_and_text_stats() -> None:
    spec = DatasetSpec(
        name="tickets", kind="text", target="label", classes=("a", "b"),
        features=(FeatureSpec(name="title", type="text"), FeatureSpec(name="age", type="numeric"),
                  FeatureSpec(name="team", type="categorical")),
    )
    frame = pd.DataFrame({"title": ["printer is not working", "great service, thanks"] * 10,
                          "age": np.arange(20.0), "team": ["x", "y"] * 10})
    narrow = build_text_preprocessor(spec).fit(frame).get_feature_names_out()
    assert all(name.startswith("text_title__") for name in narrow)  # other columns dropped
    wide = build_text_preprocessor(spec, "tfidf_unigram", include_other=True, text_stats=True)
    names = wide.fit(frame).get_feature_names_out()
    assert {"numeric__age", "categorical__team_x", "stats_title__positive_share"} <= set(names)
    stats = TextStats().fit_transform(["Abc 12", "", None])
    assert stats.shape == (3, len(TextStats.FEATURES)) and (stats >= 0).all()
    assert sentiment("not good, but a great recovery") > 0 > sentiment("the plan was not good")
    assert sentiment("the cat sat") == 0


# --------------------------------------------------------------------------- catalogue


def test_text_algorithms_are_registered_and_tunable(train: pd.DataFrame,
                                                    holdout: pd.DataFrame) -> None:
    X, y = train[SPEC.feature_names].iloc[:800], train.category.iloc[:800]
    text_algorithms = algorithms_for("text")
    for name in ("naive_bayes", "linear_svm", "sgd", "logistic_regression", "random_forest"):
        assert name in text_algorithms
    for name in ("naive_bayes", "linear_svm", "sgd"):
        assert CATALOGUE[name].kinds == frozenset({"text"})
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
        imbalance = "class_weight" if CATALOGUE[name].class_weight else "none"
        for params in [{}, *(CATALOGUE[name].search_space(study.ask()) for _ in range(2))]:
            model = build_text_model(SPEC, name, params, imbalance=imbalance, seed=3).fit(X, y)
            proba = class_proba(model, holdout[SPEC.feature_names], SPEC.classes)
            assert np.allclose(proba.sum(axis=1), 1)
            assert (model.predict(holdout[SPEC.feature_names]) == holdout.category).mean() > 0.6


def test_best_of_the_comparison_beats_the_target(batch: pd.DataFrame) -> None:
    vectorisers = ("tfidf_unigram", "tfidf_bigram", "counts")
    models = ("naive_bayes", "linear_svm", "sgd", "random_forest")
    table = compare_vectorisers(batch, SPEC, vectorisers, model=models, seed=0)
    assert len(table) == len(vectorisers) * len(models)
    assert set(table.vectoriser) == set(vectorisers) and set(table.model) == set(models)
    assert {"accuracy", "f1_macro", "fit_seconds", "predict_seconds"} <= set(table.columns)
    assert (table.n_test == 750).all() and (table.fit_seconds > 0).all()
    assert table.accuracy.is_monotonic_decreasing
    assert table.accuracy.iloc[0] > 0.85
    assert table.accuracy.min() > 0.75


# --------------------------------------------------------------------------- explanations


def test_top_words_read_as_category_words(svm_model: Pipeline, nltk_model: Pipeline) -> None:
    for model in (svm_model, nltk_model):
        words = top_words(model, n=10)
        assert set(words) == set(SPEC.classes)
        sports = {e["word"] for e in words["Sports"]["positive"]}
        vocabulary = {w for entry in news.CATEGORY_WORDS["Sports"] for w in entry.split()}
        assert any(word[:4] == v[:4] for word in sports for v in vocabulary)
        assert all(e["column"] in ("headline", "body") for e in words["Sports"]["positive"])
        assert all("__" not in e["word"] for e in words["Sports"]["negative"])


def test_top_words_needs_a_linear_model(train: pd.DataFrame) -> None:
    forest = build_text_model(SPEC, "random_forest", {"n_estimators": 10}).fit(
        train[SPEC.feature_names], train.category)
    with pytest.raises(TextError, match="linear model"):
        top_words(forest)


@pytest.mark.parametrize("algorithm", ["linear_svm", "random_forest"])
def test_explanations_name_words_of_the_article(algorithm: str, svm_model: Pipeline,
                                                train: pd.DataFrame,
                                                holdout: pd.DataFrame) -> None:
    if algorithm == "linear_svm":
        model, method = svm_model, "coefficients"
    else:
        model = build_text_model(SPEC, "random_forest", {"n_estimators": 30}).fit(
            train[SPEC.feature_names], train.category)
        method = "perturbation"
    for i in range(3):
        row = holdout.iloc[i]
        explained = explain_article(model, row.to_dict(), n=8)
        proba = class_proba(model, holdout[SPEC.feature_names].iloc[[i]], SPEC.classes)[0]
        assert explained["method"] == method
        assert explained["predicted"] == SPEC.classes[int(np.argmax(proba))]
        assert explained["runner_up"] != explained["predicted"]
        toward = explained["toward_predicted"]
        assert toward and all(e["contribution"] > 0 for e in toward)
        assert all(e["contribution"] < 0 for e in explained["toward_runner_up"])
        tokens = article_tokens(row)
        for entry in toward + explained["toward_runner_up"]:
            assert set(entry["word"].split()) <= tokens, entry


def test_common_confusions_of_a_wrapped_model(train: pd.DataFrame,
                                              holdout: pd.DataFrame) -> None:
    model = build_text_model(SPEC, "naive_bayes", imbalance="threshold_f1").fit(
        train[SPEC.feature_names], train.category)
    assert set(top_words(model, n=3)) == set(SPEC.classes)  # unwraps .estimator_
    confusions = common_confusions(model, holdout, SPEC, n=4, examples=2)
    errors = int((model.predict(holdout[SPEC.feature_names]) != holdout.category).sum())
    assert 0 < len(confusions) <= 4
    counts = [c["count"] for c in confusions]
    assert counts == sorted(counts, reverse=True) and sum(counts) <= errors
    for confusion in confusions:
        assert confusion["true"] != confusion["predicted"]
        assert 1 <= len(confusion["examples"]) <= 2
        rows = holdout[(holdout.category == confusion["true"])]
        assert set(confusion["examples"]) <= set(rows.headline)
