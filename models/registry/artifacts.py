"""The file names of a registered version's folder (`artifacts/DATASET/vN/`), in one place.

The registry writes them, the training steps attach them, the gate, drift and serving read
them; a name written as a literal in two modules is a name that can drift apart.
"""

MODEL_FILE = "model.joblib"               # the served artifact (refitted on every labelled row)
JUDGED_MODEL_FILE = "holdout_model.joblib"  # the fit on the training split, judged by the gate
CARD_FILE = "card.json"                   # the model card: schema, classes, metrics, lineage
REFERENCE_FILE = "reference.parquet"      # a training sample, the reference of drift checks
HOLDOUT_FILE = "holdout.parquet"          # held-out labelled rows the gate judges on
PROFILE_FILE = "reference_profile.json"   # the drift profile computed from the reference
