"""Hyperparameter search (``varxpress hyperopt``): TPE, annealing or random search with hyperopt, resumable.

The only package that imports hyperopt: the space (:mod:`.space`), one trial (:mod:`.objective`), the record of
finished trials (:mod:`.trials`) and the search itself (:mod:`.driver`); the names below are imported here.

Search space
    A flat mapping of parameter names to a fixed value or a distribution ``[name, args...]`` (YAML or JSON file,
    ``--space``; :data:`DEFAULT_SPACE` otherwise, its window bounds clipped to the prepared set's):

    ``upstream``, ``downstream`` (window bounds), ``n_conv`` (1-4), ``conv_filters``, ``conv_kernel``,
    ``conv_dilation``, ``conv_pool`` (one draw *per conv layer*; ``conv2_pool`` etc. override a single layer),
    ``n_dense`` (1-2), ``dense_units``, ``dense_dropout`` (per dense layer, ``dense1_units`` ...),
    ``learning_rate``, ``batch_size``, ``optimizer``, ``momentum``, ``global_pool`` (``none``/``max``/``avg``),
    ``rc_augment`` (reverse-complement augmentation, true/false), ``batch_norm`` (true/false),
    ``conv_dropout`` (dropout after every conv block), ``n_features`` (fixed, or ``[choice, 0, N]``:
    without / with the set's N features), and fixed-only ``epochs``, ``patience``, ``seed``.

    Distributions: ``[choice, a, b, ...]``, ``[uniform, lo, hi]``, ``[quniform, lo, hi, q]``,
    ``[loguniform, lo, hi]`` and ``[qloguniform, lo, hi, q]`` (bounds in natural units, not logs),
    ``[pow2, lo, hi]`` (``2**k`` for integer ``k`` in ``[lo, hi]``).

Objective
    Each trial trains for ``--trial-epochs`` epochs (early stopping on validation loss inside that budget) and
    reports the best validation MSE (on standardised labels) as its loss. A drawn pool larger than the positions
    its conv layer receives (several large pools on a short window) is capped at them, and the trial records the
    pool it trained with. Other hyperparameters the network refuses (e.g. a dropout of 1 or more) make a failed
    trial (``status: fail``), not a crashed search.

Persistence and resume
    After every finished trial the finished trials are written atomically (temporary file + rename) to
    ``OUT_DIR/trials.json`` (a JSON record of each finished trial, from which hyperopt's ``Trials`` are rebuilt)
    and summarised in ``OUT_DIR/trials.tsv``. Running the same command again loads them and continues up to
    ``--max-evals`` *in total*; a trial that was running when the search was interrupted (Ctrl-C, ``kill -9``, a
    lost machine) is simply proposed afresh. Loading the record runs no code; a ``trials.pkl`` (the pickle of
    earlier versions) is never unpickled: the search refuses to start beside one until it is moved away.

Spark
    ``--spark MASTER`` (``local[2]``, or a cluster URL such as ``spark://host:7077``) runs trials as Spark tasks
    through hyperopt's own ``SparkTrials`` (``--parallelism`` trials at once). Finished trials are persisted from
    the driver whenever the count of successful trials grows, and once more at the end (or on Ctrl-C), so resume
    works the same way; failed trials are persisted with the next success. The workers need varxpress and its
    dependencies installed; in local mode they use this Python (``PYSPARK_PYTHON`` defaults to it).

At the end the best trial's hyperparameters are written to ``OUT_DIR/best_hparams.json`` and, unless
``--no-final``, retrained with ``--final-epochs`` (default: the space's ``epochs``) by
:func:`varxpress.learning.training.train`, which saves the model and its report.

Ensemble
    ``--ensemble-top-k K`` retrains the ``K`` best successful trials (validation loss, ties by trial id) the same
    way and exports them with :func:`varxpress.models.ensemble.export_ensemble` to ``--ensemble-out`` (default
    ``OUT_DIR/ensemble``), source ``{"kind": "hyperopt-top-k", "trials": [...], "losses": [...]}``. Members must
    read one window, so only trials with the best trial's ``upstream``/``downstream`` are eligible (others are
    skipped, with a warning). The final model, when made, is reused as the best trial's member.
"""

from varxpress.learning.tuning.driver import SearchResult, search, top_k_trials
from varxpress.learning.tuning.objective import Objective
from varxpress.learning.tuning.space import DEFAULT_SPACE, build_space, clip_space, flat_to_hparams, read_space
from varxpress.learning.tuning.trials import STORE_FORMAT, TrialStore

__all__ = [
    "DEFAULT_SPACE",
    "read_space",
    "clip_space",
    "build_space",
    "flat_to_hparams",
    "Objective",
    "STORE_FORMAT",
    "TrialStore",
    "SearchResult",
    "top_k_trials",
    "search",
]
