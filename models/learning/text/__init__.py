"""Text classification: cleaning, vectorisers, text algorithms and word-level explanations.

What it provides:

- `TextCleaner`, a scikit-learn transformer (lower-case, strip numbers and punctuation,
  tokenise, mark negations, drop stop words, stem or lemmatise), and `TextStats` (length,
  shape and a small lexicon sentiment), both usable inside the saved `Pipeline`;
- `build_text_preprocessor`, one `ColumnTransformer` per text spec built from a named
  vectoriser (`VECTORISERS`), the first text column (the headline) weighted up;
- the text algorithms `naive_bayes`, `linear_svm` and `sgd` (`TEXT_ALGORITHMS`), which the
  catalogue assembles with the tabular ones (`build_text_model` is the catalogue's);
- `top_words`, `explain_article` and `common_confusions` in `models.learning.text.explain`
  (imported from there: it needs scikit-learn's calibration module, which a training task
  of another algorithm never loads), and `compare_vectorisers` in
  `models.learning.text_comparison`.

What it must not do: download anything. NLTK's English stop-word list ships inside the package
(`models/resources/nltk_data`, appended to `nltk.data.path` so a user's own NLTK_DATA wins);
WordNet does not, and asking for lemmatisation without it raises `MissingNLTKDataError` saying
how to get it. It writes nothing: persisting models and results is the caller's job.
"""


from models.learning.text.algorithms import TEXT, TEXT_ALGORITHMS, calibrated_linear_svm
from models.learning.text.cleaner import (
    NLTK_DATA,
    MissingNLTKDataError,
    TextCleaner,
    TextError,
    TextStats,
    load_stopwords,
    require_wordnet,
    sentiment,
    texts_of,
)
from models.learning.text.vectorisers import VECTORISERS, build_text_preprocessor

__all__ = [
    "NLTK_DATA", "TEXT", "TEXT_ALGORITHMS", "VECTORISERS", "MissingNLTKDataError", "TextCleaner",
    "TextError", "TextStats", "build_text_preprocessor", "calibrated_linear_svm",
    "load_stopwords", "require_wordnet", "sentiment", "texts_of",
]
