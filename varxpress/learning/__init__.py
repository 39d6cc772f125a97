"""The learning half: prepared sets, training, hyperparameter search, evaluation against baselines."""
