"""Feeding a prepared set to Keras: rows in memory or streamed from the HDF5 file, in batches of float32 windows.

The training split is held in memory as uint8 windows (4 bytes per base, a quarter of float32) when it is smaller
than ``max_memory_gb``; otherwise batches are read from the HDF5 file (chunked rows) by a ``keras.utils.PyDataset``.
Either way each batch is converted to float32 on the fly.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from varxpress.lazy_keras import import_keras
from varxpress.learning.prepared import Arrays, PreparedSet

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__all__ = ["WindowBatches", "load_split", "labels_of", "predict_network"]

log = logging.getLogger(__name__)




class WindowBatches:
    """Factory of a ``keras.utils.PyDataset`` over rows of a prepared set (built lazily so importing is cheap).

    Use :meth:`make`; the dataset yields ``(inputs, y float32 (b,))`` with inputs ``{"promoter": float32 (b, L, 4),
    "halflife": float32 (b, F)}``, or the promoter array alone for a network without features.
    """

    @staticmethod
    def make(source: Arrays | tuple[PreparedSet, np.ndarray], upstream: int, downstream: int,
             labels: np.ndarray, batch_size: int, use_features: bool, shuffle: bool, seed: int,
             rc_augment: bool = False):
        """``rc_augment``: each row of a batch is reverse-complemented (bases reversed, A<->T, C<->G) with
        probability 1/2, drawn afresh every epoch (a training-time choice; the label is kept)."""
        keras = import_keras()

        class _Batches(keras.utils.PyDataset):
            def __init__(self) -> None:
                super().__init__(workers=1, use_multiprocessing=False)
                self.in_memory = isinstance(source, Arrays)
                self.n = len(source.ids) if self.in_memory else len(source[1])
                self.rng = np.random.default_rng(seed)
                self.order = self.rng.permutation(self.n) if shuffle else np.arange(self.n)

            def __len__(self) -> int:
                return max(1, -(-self.n // batch_size))

            def __getitem__(self, i: int):
                pick = self.order[i * batch_size:(i + 1) * batch_size]
                if self.in_memory:
                    X, feats = source.X[pick], source.features[pick]
                else:
                    pset, rows = source
                    arrays = pset.read_rows(rows[pick], upstream, downstream)
                    X, feats = arrays.X, arrays.features
                X = X.astype(np.float32)
                if rc_augment:
                    flip = self.rng.random(len(pick)) < 0.5
                    X[flip] = X[flip, ::-1, ::-1]  # ACGT channel order: reversing it complements
                inputs = {"promoter": X, "halflife": feats.astype(np.float32)} if use_features else X
                return inputs, labels[pick].astype(np.float32)

            def on_epoch_end(self) -> None:
                if shuffle:
                    self.order = self.rng.permutation(self.n)

        return _Batches()



def load_split(pset: PreparedSet, split: str, hp: dict, max_bytes: float, cache: dict | None):
    """In-memory Arrays, or ``(pset, rows)`` for streaming when the split is larger than ``max_bytes``."""
    key = (str(pset.path), split, int(hp["upstream"]), int(hp["downstream"]))
    if cache is not None and key in cache:
        return cache[key]
    rows = pset.indices(split)
    size = len(rows) * (int(hp["upstream"]) + int(hp["downstream"])) * 4
    if size > max_bytes:
        log.info("%s split: %.1f GB of windows, streamed from %s", split, size / 1e9, pset.path)
        return (pset, rows)
    arrays = pset.load(split, int(hp["upstream"]), int(hp["downstream"]))
    if cache is not None:
        cache[key] = arrays
    return arrays


def labels_of(data) -> np.ndarray:
    """The labels of in-memory Arrays or of streamed ``(pset, rows)``."""
    return data.labels if isinstance(data, Arrays) else data[0].labels[data[1]]



def predict_network(network, data, hp: dict, batch_size: int = 256) -> np.ndarray:
    """Raw network outputs ``(n,)`` on in-memory Arrays or streamed ``(pset, rows)``."""
    labels = np.zeros(len(labels_of(data)), dtype=np.float32)
    if len(labels) == 0:
        return np.zeros(0)
    batches = WindowBatches.make(data, int(hp["upstream"]), int(hp["downstream"]), labels, batch_size,
                                 int(hp["n_features"]) > 0, False, 0)
    out = [np.asarray(network.predict_on_batch(batches[i][0]), dtype=np.float64).reshape(-1)
           for i in range(len(batches))]
    return np.concatenate(out)
