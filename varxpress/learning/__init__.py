"""The learning half: prepared sets (built, split, stored), training, hyperparameter search, evaluation against
baselines."""
