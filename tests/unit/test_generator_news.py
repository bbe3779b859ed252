"""The news generator: determinism, shape, a baseline accuracy band and each drift effect."""

from __future__ import annotations

import re
from datetime import date

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.dummy import DummyClassifier
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.naive_bayes import MultinomialNB

from models.data.generators import news
from models.data.generators.base import DriftState

DAY = date(2024, 5, 1)
NEXT_DAY = date(2024, 5, 2)
ROWS = 2000


def words_of(text: str) -> set[str]:
    """Lower-case alphabetic words of a text."""
    return set(re.findall(r"[a-z]+", text.lower()))


def vocabulary_words(entries: tuple[str, ...]) -> set[str]:
    """Single words of vocabulary entries (phrases and entities split)."""
    return set().union(*(words_of(entry) for entry in entries))


def full_text(frame: pd.DataFrame) -> pd.Series:
    """Headline and body, as the good model reads them."""
    return frame["headline"] + " " + frame["body"]


def fit_text_model(frame: pd.DataFrame) -> tuple[TfidfVectorizer, LogisticRegression]:
    """The good model: TF-IDF of headline + body, then logistic regression."""
    vectorizer = TfidfVectorizer(sublinear_tf=True)
    model = LogisticRegression(max_iter=1000)
    model.fit(vectorizer.fit_transform(full_text(frame)), frame["category"])
    return vectorizer, model


@pytest.fixture(scope="module")
def stable() -> pd.DataFrame:
    return news.generate(DAY, ROWS)


@pytest.fixture(scope="module")
def stable_next() -> pd.DataFrame:
    return news.generate(NEXT_DAY, ROWS)


def test_spec_describes_the_frame() -> None:
    spec = news.SPEC
    assert spec.name == news.DATASET == "news"
    assert spec.kind == "text"
    assert spec.feature_names == ["headline", "body"]
    assert spec.features_of_type("text") == ["headline", "body"]
    assert spec.target == "category"
    assert spec.classes == news.CLASSES
    assert spec.class_shares == dict(zip(news.CLASSES, news.SHARES, strict=True))
    assert spec.confidence_threshold == 0.5
    assert sum(news.SHARES) == pytest.approx(1.0)


def test_vocabularies_are_sized_and_disjoint() -> None:
    shared = set(news.SHARED_WORDS) | set(news.NEGATIONS)
    assert len(news.SHARED_WORDS) >= 180
    seen: set[str] = set()
    for name in news.CLASSES:
        entries = set(news.CATEGORY_WORDS[name])
        assert 80 <= len(entries) <= 120, name
        assert not entries & seen, name
        assert not entries & shared, name
        seen |= entries
    stable_words = vocabulary_words(tuple(seen)) | vocabulary_words(news.SHARED_WORDS)
    for entities in (*news.CATEGORY_ENTITIES.values(), news.GENERIC_ENTITIES):
        stable_words |= vocabulary_words(entities)
    assert 25 <= len(set(news.EMERGING_TERMS)) <= 40
    assert not set(news.EMERGING_TERMS) & stable_words


def test_same_inputs_give_the_same_frame() -> None:
    drift = DriftState(covariate_shift=0.3, new_vocabulary=0.5)
    first = news.generate(DAY, 300, seed=7, drift=drift)
    pd.testing.assert_frame_equal(first, news.generate(DAY, 300, seed=7, drift=drift))


def test_other_date_or_seed_gives_another_frame() -> None:
    small = news.generate(DAY, 300)
    assert not small.equals(news.generate(NEXT_DAY, 300))
    assert not small.equals(news.generate(DAY, 300, seed=43))


def test_columns_dtypes_and_index(stable: pd.DataFrame) -> None:
    assert list(stable.columns) == ["headline", "body", "category"]
    assert isinstance(stable.index, pd.RangeIndex)
    assert len(stable) == ROWS
    for column in stable.columns:
        assert stable[column].dtype == object
        assert stable[column].map(type).eq(str).all()
    assert set(stable["category"]) == set(news.CLASSES)


def test_class_shares_match_the_spec() -> None:
    frame = news.generate(DAY, 6000)
    shares = frame["category"].value_counts(normalize=True).reindex(news.CLASSES)
    np.testing.assert_allclose(shares.to_numpy(), news.SHARES, atol=0.03)


def test_texts_have_the_intended_shape(stable: pd.DataFrame) -> None:
    assert stable["headline"].str.strip().str.len().gt(0).all()
    assert stable["body"].str.strip().str.len().gt(0).all()
    headline_words = stable["headline"].str.split().str.len()
    body_words = stable["body"].str.split().str.len()
    assert headline_words.between(6, 12).all()
    assert body_words.between(60, 160).all()
    assert 90 <= body_words.mean() <= 120
    assert stable["body"].str.endswith(".").all()
    assert stable["body"].str.count(r"\. ").ge(2).all()  # several sentences
    assert stable["body"].str.contains(",").mean() > 0.5
    assert not stable["headline"].str[0].str.islower().any()


def test_bodies_carry_entities_numbers_and_negations(stable: pd.DataFrame) -> None:
    body = stable["body"]
    assert body.str.contains(r"\d").mean() > 0.9
    assert body.str.contains(r"\d+%").mean() > 0.3
    assert body.str.contains(r"\b(?:not|no|never) \w", case=False).mean() > 0.5
    generic = "|".join(re.escape(name) for name in news.GENERIC_ENTITIES)
    assert body.str.contains(generic).mean() > 0.8
    sports = stable[stable["category"] == "Sports"]["body"]
    assert sports.str.contains(r"\b\d-\d\b").mean() > 0.5  # match scores


def test_a_good_model_lands_near_090_and_a_naive_one_below() -> None:
    frame = news.generate(DAY, 3000)
    train, test = train_test_split(
        frame, test_size=0.25, stratify=frame["category"], random_state=0
    )
    vectorizer, model = fit_text_model(train)
    good = (model.predict(vectorizer.transform(full_text(test))) == test["category"]).mean()

    counts = CountVectorizer()
    naive_model = MultinomialNB().fit(counts.fit_transform(train["headline"]), train["category"])
    naive = (naive_model.predict(counts.transform(test["headline"])) == test["category"]).mean()

    majority = DummyClassifier().fit(train[["body"]], train["category"])
    baseline = majority.score(test[["body"]], test["category"])

    assert 0.85 <= good <= 0.95
    assert naive <= good - 0.05
    assert naive > 0.6
    assert 0.15 <= baseline <= 0.25


def technology_bodies_with_emerging_terms(frame: pd.DataFrame) -> tuple[int, int]:
    """Technology articles with and without at least one emerging term."""
    emerging = set(news.EMERGING_TERMS)
    technology = frame[frame["category"] == "Technology"]
    hits = int(full_text(technology).map(lambda text: bool(words_of(text) & emerging)).sum())
    return hits, len(technology) - hits


def test_new_vocabulary_brings_emerging_terms_into_technology(
    stable: pd.DataFrame, stable_next: pd.DataFrame
) -> None:
    emerging = set(news.EMERGING_TERMS)
    for frame in (stable, stable_next):
        assert not full_text(frame).map(lambda text: bool(words_of(text) & emerging)).any()
    drifted = news.generate(NEXT_DAY, ROWS, drift=DriftState(new_vocabulary=1.0))
    base, shifted = (technology_bodies_with_emerging_terms(f) for f in (stable, drifted))
    control = technology_bodies_with_emerging_terms(stable_next)
    assert shifted[0] / sum(shifted) > 0.9
    assert stats.fisher_exact([base, shifted]).pvalue < 1e-6
    assert stats.fisher_exact([base, control]).pvalue > 0.01
    assert (
        drifted[drifted["category"] != "Technology"]["body"]
        .map(lambda text: not words_of(text) & emerging)
        .all()
    )

    tech_words = vocabulary_words(news.CATEGORY_WORDS["Technology"])
    tokens = " ".join(drifted[drifted["category"] == "Technology"]["body"]).lower()
    found = re.findall(r"[a-z]+", tokens)
    new = sum(word in emerging for word in found)
    old = sum(word in tech_words for word in found)
    assert 0.28 <= new / (new + old) <= 0.42


def category_counts(frame: pd.DataFrame) -> np.ndarray:
    """Articles per class, in the order of CLASSES."""
    return frame["category"].value_counts().reindex(news.CLASSES, fill_value=0).to_numpy()


def test_label_shift_raises_the_health_share(
    stable: pd.DataFrame, stable_next: pd.DataFrame
) -> None:
    expected = np.array(news.SHARES) * ROWS
    for frame in (stable, stable_next):
        assert stats.chisquare(category_counts(frame), expected).pvalue > 0.01
    drifted = news.generate(NEXT_DAY, ROWS, drift=DriftState(label_shift=1.0))
    assert stats.chisquare(category_counts(drifted), expected).pvalue < 1e-6
    health = (drifted["category"] == "Health").mean()
    assert 0.30 <= health <= 0.40  # 0.15 x 3, renormalised: about 0.35


def test_concept_drift_confuses_a_model_trained_on_stable_data(
    stable: pd.DataFrame, stable_next: pd.DataFrame
) -> None:
    vectorizer, model = fit_text_model(stable)

    def business_hits(frame: pd.DataFrame) -> tuple[int, int]:
        business = frame[frame["category"] == "Business"]
        right = int((model.predict(vectorizer.transform(full_text(business))) == "Business").sum())
        return right, len(business) - right

    control = business_hits(news.generate(date(2024, 5, 3), ROWS))
    night = business_hits(stable_next)
    drifted = business_hits(news.generate(NEXT_DAY, ROWS, drift=DriftState(concept_drift=1.0)))

    def accuracy(hits: tuple[int, int]) -> float:
        return hits[0] / sum(hits)

    assert accuracy(night) - accuracy(drifted) >= 0.10
    assert stats.fisher_exact([night, drifted]).pvalue < 1e-6
    assert stats.fisher_exact([night, control]).pvalue > 0.01


def body_word_counts(frame: pd.DataFrame) -> pd.Series:
    """Whitespace-separated words per body."""
    return frame["body"].str.split().str.len()


def test_covariate_shift_lengthens_bodies_and_thins_category_words(
    stable: pd.DataFrame, stable_next: pd.DataFrame
) -> None:
    drifted = news.generate(NEXT_DAY, ROWS, drift=DriftState(covariate_shift=1.0))
    base, control, shifted = (body_word_counts(f) for f in (stable, stable_next, drifted))
    assert stats.ks_2samp(base, control).pvalue > 0.01
    assert stats.ks_2samp(base, shifted).pvalue < 1e-6
    assert 1.35 <= shifted.mean() / base.mean() <= 1.65

    category_words = vocabulary_words(
        tuple(word for name in news.CLASSES for word in news.CATEGORY_WORDS[name])
    )

    def density(frame: pd.DataFrame) -> float:
        found = re.findall(r"[a-z]+", " ".join(frame["body"]).lower())
        return sum(word in category_words for word in found) / len(found)

    assert density(drifted) < 0.8 * density(stable)
    assert density(stable_next) == pytest.approx(density(stable), rel=0.05)


def test_batches_larger_than_a_chunk_keep_their_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(news, "CHUNK_ROWS", 64)
    frame = news.generate(DAY, 200)
    assert len(frame) == 200
    assert isinstance(frame.index, pd.RangeIndex)
    assert frame["headline"].str.split().str.len().between(6, 12).all()
    assert body_word_counts(frame).between(60, 160).all()
