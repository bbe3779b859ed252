"""Articles per second through cleaning, vectorising and predicting, for the best text pipeline.

Compares vectorisers and text models on one stable 3000-row news batch (held-out 25 %), takes
the most accurate pair on raw text and the most accurate TextCleaner-based pair (`tfidf_nltk`),
trains each once on the whole batch and times `predict_proba` on fresh batches of generated
articles. Generating the articles is not timed. Figures are printed and written to
benchmarks/results/text.json.

    .venv/bin/python benchmarks/bench_text.py [--sizes 1000 100000] [--models naive_bayes sgd]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from models.data.generators import news
from models.learning.catalogue import build_text_model
from models.learning.text import VECTORISERS
from models.learning.text_comparison import compare_vectorisers

RESULTS = Path(__file__).parent / "results" / "text.json"
TRAIN_DAY = date(2024, 5, 1)
SCORE_DAY = date(2024, 6, 1)


def time_pipeline(vectoriser: str, algorithm: str, train: pd.DataFrame,
                  batches: dict[int, pd.DataFrame]) -> list[dict[str, Any]]:
    """Fit once on `train`, then time predict_proba on each batch."""
    spec = news.SPEC
    model = build_text_model(spec, algorithm, vectoriser=vectoriser)
    start = time.perf_counter()
    model.fit(train[spec.feature_names], train[spec.target])
    fit_seconds = time.perf_counter() - start
    rows = []
    for size, frame in batches.items():
        start = time.perf_counter()
        proba = model.predict_proba(frame[spec.feature_names])
        seconds = time.perf_counter() - start
        accuracy = float((model.classes_[proba.argmax(axis=1)] == frame[spec.target]).mean())
        rows.append({"vectoriser": vectoriser, "model": algorithm, "articles": size,
                     "fit_seconds": fit_seconds, "predict_seconds": seconds,
                     "articles_per_second": size / seconds, "accuracy": accuracy})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 100_000])
    parser.add_argument("--vectorisers", nargs="+", default=list(VECTORISERS))
    parser.add_argument("--models", nargs="+",
                        default=["naive_bayes", "linear_svm", "sgd", "logistic_regression"])
    args = parser.parse_args()

    train = news.generate(TRAIN_DAY, 3000, 42)
    table = compare_vectorisers(train, news.SPEC, args.vectorisers, model=args.models, seed=0)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    # The best pipeline on raw text and the best one behind a TextCleaner (table is best first).
    uses_cleaner = table.vectoriser == "tfidf_nltk"
    pipelines = [(part.iloc[0].vectoriser, part.iloc[0].model)
                 for part in (table[~uses_cleaner], table[uses_cleaner]) if len(part)]

    scored = news.generate(SCORE_DAY, max(args.sizes), 7)
    batches = {size: scored.iloc[:size] for size in sorted(args.sizes)}
    timings = []
    print(f"\n{'vectoriser':<15}{'model':<21}{'articles':>10}{'seconds':>10}"
          f"{'articles/s':>12}{'accuracy':>10}")
    for vectoriser, algorithm in pipelines:
        for row in time_pipeline(vectoriser, algorithm, train, batches):
            timings.append(row)
            print(f"{vectoriser:<15}{algorithm:<21}{row['articles']:>10,}"
                  f"{row['predict_seconds']:>10.2f}{row['articles_per_second']:>12,.0f}"
                  f"{row['accuracy']:>10.3f}")

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "comparison": table.to_dict(orient="records"),
        "throughput": timings,
    }, indent=2))
    print(f"written {RESULTS}")


if __name__ == "__main__":
    main()
