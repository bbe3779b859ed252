"""Nightly drift reports: the champion's reference data against one batch, on all of its rows.

What it is for. For a dataset and a batch, this package compares the batch's features, and the
champion's predicted classes on it, with the champion's reference data (the sample of training
rows kept beside the model as `reference.parquet`). It gives one verdict per column (method,
score, threshold, drifted), the share of drifted columns and the dataset-level verdict, writes
them to `drift_reports` / `drift_columns` in one transaction, and saves an Evidently HTML
report under the data home as `reports/drift/DATASET/DATE.html`.

How it stays fast. Evidently's DataDriftPreset on a 1M-row batch takes most of a minute and
over a gigabyte, most of it on plots and correlations, not on the tests. So the verdict is
computed here with NumPy/SciPy on every row, with exactly the tests, thresholds and method
choice of Evidently 0.7.23's defaults (read from its source, `evidently/legacy/calculations/
stattests/registry.py::_get_default_stattest` and the stattest modules):

- the method depends on the *reference* size (non-missing values) and the number of distinct
  values in reference and current together:
  reference > 1000 values: numeric with > 5 distinct values -> Wasserstein distance divided by
  the reference's population std (floored at 0.001), drift when >= 0.1; numeric with <= 5
  distinct values and categorical -> Jensen-Shannon distance (natural log) of the value
  frequencies over the union of values, drift when >= 0.1.
  reference <= 1000 values: numeric with > 5 distinct values -> two-sample KS, drift when
  p <= 0.05; otherwise chi-square (more than 2 values, drift when p < 0.05) or the
  two-proportion Z-test (2 values or fewer, drift when p < 0.05).
- missing and infinite values are dropped before a test (as Evidently does);
- dataset drift: share of drifted columns >= 0.5 (`get_dataset_drift`; `DRIFT_SHARE`).

Evidently itself only renders the HTML, on bounded samples (`sample_rows`) of reference and
current; the stored verdict is always the all-rows one, and the HTML says so at its top.

Text columns are judged without embeddings (Evidently's default for text is a domain
classifier, which is neither cheap nor what we want stored): per text column,
`COLUMN:word_count` (whitespace words per text, tested like a numeric column) and
`COLUMN:oov_share` (share of word tokens never seen in the reference vocabulary; see
`oov_threshold` for the rule). The champion's predicted classes are one more column,
`prediction`, tested like a categorical column against its predictions on the reference.

The reference side of every test is precomputed once per model version in a
`ReferenceProfile` (`reference_profile.json` beside the artifact): sorted reference values per
numeric column, category counts, word counts and vocabulary per text column, and the
reference predicted-class counts. A night then reads only the current batch.

What it must not do: change anything but its own two tables and its HTML file; leave a
partial report (the rows of one report land in one transaction, all or nothing); crash on a
bad batch (an empty batch, a missing column, a column with no values raise `DriftError` with
a message naming the problem, before anything is written); hold the warehouse open while it
computes.

Where things are (each module imports only the ones listed before it; nothing is re-exported
here, so import a name from the module that owns it):

- `verdict`: `ColumnDrift`, `DriftSummary` (`share_drifted`, `dataset_drift`), `DRIFT_SHARE`
  and `DriftError`: what a report yields;
- `statistics`: the per-column tests above (`numeric_test`, `counts_test`,
  `wasserstein_distance_sorted`, `oov_share`, `oov_threshold`) and how values are read;
- `profile`: `ReferenceProfile` / `TextProfile`, built, saved, loaded
  (`profile_for_version`), the frame check and the champion's predicted classes;
- `evidently_report`: Evidently's HTML (`render_html`) and its own verdict
  (`evidently_verdict`, the yardstick ours is tested against);
- `nightly`: `compute_drift` (the all-rows verdict) and `run_drift_report`, the night's entry
  point, which stores it (`write_summary`) and renders the HTML.
"""
