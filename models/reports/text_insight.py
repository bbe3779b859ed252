"""The sections of a text model's report that say what the model reads.

Why it exists. "Top features" of a news model, computed by shuffling raw columns, says only
that the headline and the body matter. Editors want the words: which words pull an article
into each category (from the fitted model's own weights), which categories it mixes up, with
real headlines of those mistakes, and whether another way of turning text into features
would have done better on the same rows (the run's own vectoriser comparison).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from models.data.spec import DatasetSpec
from models.learning.text.cleaner import TextError
from models.learning.text.explain import top_words
from models.reports.tables import markdown_table

TOP_WORDS = 8
CONFUSIONS = 3
EXAMPLES = 2
HEADLINE_CHARACTERS = 120
COMPARED_VECTORISERS = ("tfidf_unigram", "tfidf_bigram", "counts")
COMPARED_ROWS = 2000          # training rows of the comparison (test rows: half)


def _quoted(text: Any) -> str:
    """A headline for a Markdown list: one line, bounded, with Markdown's marks escaped
    (the HTML layer shows the rest as text)."""
    line = " ".join(str(text).split())
    if len(line) > HEADLINE_CHARACTERS:
        line = line[:HEADLINE_CHARACTERS - 1] + "…"
    for mark in "\\`*_[]()#|>!":
        line = line.replace(mark, "\\" + mark)
    return f"“{line}”"


def top_words_section(model: Any, classes: Sequence[str], n: int = TOP_WORDS) -> str:
    """Per class, the words whose weights pull an article towards it the most."""
    try:
        words = top_words(model, 3 * n)       # a word often leads in headline and body both
    except TextError as error:
        return ("## Top words per class\n\nNot available for this model (its weights are "
                f"not per word: {error}). `?explain=true` explains single articles.")
    rows = [{"class": name, "words that pull towards it": ", ".join(
        f"`{word}`" for word in class_words(words, name, n)) or "n/a"} for name in classes]
    intro = ("The words (or word pairs) with the largest weights towards each class in the "
             "fitted model, strongest first, whichever text column they were read from.")
    return f"## Top words per class\n\n{intro}\n\n{markdown_table(rows)}"


def class_words(words: Mapping[str, Mapping[str, Any]], name: str, n: int = TOP_WORDS
                ) -> list[str]:
    """The `n` strongest distinct words towards class `name` of a `top_words` result."""
    distinct = dict.fromkeys(str(entry["word"]) for entry in
                             words.get(name, {}).get("positive", []))
    return list(distinct)[:n]


def confusion_pairs(y_true: Any, y_pred: Any, top: int = CONFUSIONS
                    ) -> list[tuple[str, str, int]]:
    """The most frequent (true, predicted) mistakes, most frequent first."""
    truth = np.asarray(y_true, dtype=object).astype(str)
    guess = np.asarray(y_pred, dtype=object).astype(str)
    wrong = Counter(zip(truth[truth != guess], guess[truth != guess], strict=True))
    return [(t, p, count) for (t, p), count in wrong.most_common(top)]


def confusions_section(spec: DatasetSpec, X: pd.DataFrame, y_true: Any, y_pred: Any) -> str:
    """The commonest mistakes, each with a few real headlines the model got wrong that way."""
    pairs = confusion_pairs(y_true, y_pred)
    if not pairs:
        return "## Common confusions\n\nNo article of the test set was misclassified."
    column = spec.features_of_type("text")[0]
    truth = np.asarray(y_true, dtype=object).astype(str)
    guess = np.asarray(y_pred, dtype=object).astype(str)
    texts = X[column].reset_index(drop=True)
    lines = []
    for true_class, predicted, count in pairs:
        share = count / max(int((truth == true_class).sum()), 1)
        lines.append(f"- **{true_class}** read as **{predicted}**: {count} articles "
                     f"({share:.0%} of {true_class})")
        where = np.flatnonzero((truth == true_class) & (guess == predicted))[:EXAMPLES]
        lines += [f"    - {_quoted(texts.iloc[i])}" for i in where]
    return (f"## Common confusions\n\nThe test set's most frequent mistakes, with "
            f"`{column}` of examples.\n\n" + "\n".join(lines))


def vectoriser_section(table: pd.DataFrame | Sequence[Mapping[str, Any]]) -> str:
    """The run's vectoriser comparison: the same classifier, the same split."""
    rows = (table.to_dict("records") if isinstance(table, pd.DataFrame) else list(table))
    intro = ("Each way of turning text into features, with the same classifier at its "
             "default settings, fitted on this run's training rows and scored on its test "
             "rows (best first). The champion itself was tuned; these were not.")
    return f"## Vectoriser comparison\n\n{intro}\n\n{markdown_table(rows)}"
