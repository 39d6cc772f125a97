"""From (variant, gene) pairs to scores: the prediction engine, the score arithmetic and the ``score``
pipeline."""
