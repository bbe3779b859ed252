"""What can be trained and how: the algorithm catalogue, preprocessing, imbalance
strategies, Optuna tuning, fitting and selecting candidates, text and ensembles."""
