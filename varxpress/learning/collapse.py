"""Collapse detection while a network trains: a model that predicts (nearly) one value for every gene.

An earlier attempt at this idea shipped a network that predicted one constant for every gene (test r² 0.008).
Xpresso's head ends in ``Dense -> ReLU`` before the linear output, and the classic way such a network collapses is
a *dead* final ReLU layer: every unit's input is negative for every gene, the units output 0, no gradient reaches
anything behind them, and the network can only output the output layer's bias. A learning rate too high (one large
step pushes the dense biases far negative), labels far from 0 that were not standardised, or an unlucky
initialisation are the usual causes.

:class:`CollapseMonitor` makes a Keras callback that, at the end of every epoch, predicts a fixed sample of the
validation set (up to :data:`SAMPLE_SIZE` genes) and checks

* **spread**: the predictions' standard deviation against the labels' (the same genes, training units): below
  :data:`SPREAD_FRACTION` (5%) counts as collapsed. A model whose predictions vary by less than 5% of the labels'
  spread explains at most a few tenths of a percent of their variance (r² <= r * 0.05 for any correlation r);
* **dead final ReLU**: the output of the last ``relu_j`` layer on that sample; a unit that is 0 for every gene is
  dead, and *all* of them dead counts as collapsed (the output is then one constant).

Predictions that are not finite count as collapsed too. Each collapsed epoch is logged as a warning framed in
``!!!`` with the likely causes, recorded (:attr:`events`), and with ``stop=True`` ends training.
"""

from __future__ import annotations

import logging

import numpy as np

__all__ = ["SPREAD_FRACTION", "SAMPLE_SIZE", "CollapseMonitor", "likely_causes"]

log = logging.getLogger(__name__)

SPREAD_FRACTION = 0.05
SAMPLE_SIZE = 512


def likely_causes(learning_rate: float, standardized: bool, label_mean: float, label_sd: float) -> list[str]:
    """The usual reasons for a collapse, most specific first, worded for the user."""
    causes = [f"learning rate too high ({learning_rate:g}): try 3-10x lower"]
    if not standardized:
        if label_sd > 0 and abs(label_mean) > 3 * label_sd:
            causes.insert(0, f"labels not standardised and far from 0 (mean {label_mean:.3g}, sd {label_sd:.3g}): "
                             "drop --no-standardize-labels")
        else:
            causes.append("labels not standardised (--no-standardize-labels): standardising usually helps")
    causes.append("initialisation: dense units that start (or are pushed by the first steps) negative for every "
                  "gene; try another seed or a lower learning rate")
    causes.append("labels without signal in the window (check the label table's id column and the TSS set)")
    return causes


class CollapseMonitor:
    """Factory of the Keras collapse callback (built lazily so importing is cheap); use :meth:`make`.

    The callback's ``events`` (a list of dicts, one per collapsed epoch: ``epoch`` 1-based, ``pred_sd``,
    ``label_sd``, ``spread_ratio``, ``dead_units``, ``units``, ``relu_layer``, ``reasons``) and ``history``
    (``val_pred_sd_ratio`` and ``dead_relu_fraction`` per epoch) are read after ``fit``.
    """

    @staticmethod
    def make(batches, labels: np.ndarray, causes: list[str], stop: bool = False,
             fraction: float = SPREAD_FRACTION, sample_size: int = SAMPLE_SIZE):
        """The callback.

        Args:
            batches: the validation ``PyDataset`` (unshuffled) of ``(inputs, y)`` batches.
            labels: shape (n,), the validation labels in training units (as the network is fitted to them).
            causes: :func:`likely_causes`, shown with a collapse.
            stop: end training at the first collapsed epoch (else warn and go on).
            fraction: spread threshold, a fraction of the labels' standard deviation.
            sample_size: most validation genes predicted per check.
        """
        import keras

        class _Monitor(keras.callbacks.Callback):
            def __init__(self) -> None:
                super().__init__()
                self.events: list[dict] = []
                self.history: dict[str, list[float]] = {"val_pred_sd_ratio": [], "dead_relu_fraction": []}
                self.inputs, taken = [], 0
                for i in range(len(batches)):
                    if taken >= sample_size:
                        break
                    x, _ = batches[i]
                    self.inputs.append(x)
                    taken += len(next(iter(x.values())) if isinstance(x, dict) else x)
                self.label_sd = float(np.std(np.asarray(labels, dtype=np.float64)[:taken]))

            def on_train_begin(self, logs=None) -> None:
                relus = [layer for layer in self.model.layers if layer.name.startswith("relu_")]
                self.relu = relus[-1] if relus else None
                outputs = [self.model.output] + ([self.relu.output] if self.relu is not None else [])
                inputs = self.model.inputs
                self.probe = keras.Model(inputs=inputs if len(inputs) > 1 else inputs[0], outputs=outputs)

            def _outputs(self) -> tuple[np.ndarray, np.ndarray | None]:
                preds, acts = [], []
                for x in self.inputs:
                    out = self.probe(x, training=False)
                    out = out if isinstance(out, (list, tuple)) else [out]
                    preds.append(np.asarray(out[0], dtype=np.float64).reshape(-1))
                    if len(out) > 1:
                        acts.append(np.asarray(out[1], dtype=np.float64))
                return np.concatenate(preds), (np.concatenate(acts) if acts else None)

            def on_epoch_end(self, epoch: int, logs=None) -> None:
                pred, acts = self._outputs()
                finite = bool(np.isfinite(pred).all())
                pred_sd = float(np.std(pred)) if finite else float("nan")
                ratio = pred_sd / self.label_sd if self.label_sd > 0 else float("nan")
                units = int(acts.shape[1]) if acts is not None else 0
                dead = int((np.abs(acts) <= 0).all(axis=0).sum()) if acts is not None else 0
                self.history["val_pred_sd_ratio"].append(ratio)
                self.history["dead_relu_fraction"].append(dead / units if units else float("nan"))
                reasons = []
                if not finite:
                    reasons.append("the predictions are not finite (NaN or infinite)")
                elif ratio < fraction:
                    reasons.append(f"the predictions on {len(pred)} validation genes have sd {pred_sd:.3g}, "
                                   f"{100 * ratio:.2f}% of the labels' sd {self.label_sd:.3g} (threshold "
                                   f"{100 * fraction:g}%)")
                if units and dead == units:
                    reasons.append(f"all {units} units of the final ReLU layer ({self.relu.name}) output 0 on every "
                                   "validation gene (dead ReLU: the network can only output its last bias)")
                if not reasons:
                    return
                event = {"epoch": epoch + 1, "pred_sd": pred_sd, "label_sd": self.label_sd, "spread_ratio": ratio,
                         "dead_units": dead, "units": units, "relu_layer": self.relu.name if self.relu else None,
                         "reasons": reasons}
                self.events.append(event)
                shown = causes
                if finite and not (units and dead == units):  # a narrow spread, nothing dead: often only early
                    shown = [f"not trained enough yet: a network starts near the labels' mean and spreads out as "
                             f"it learns (epoch {epoch + 1}; more epochs, or a learning rate that is not too "
                             f"low)"] + causes
                log.warning("!!! train: the model has COLLAPSED at epoch %d: %s. Likely causes: %s.%s !!!",
                            epoch + 1, "; ".join(reasons), "; ".join(shown),
                            " Stopping (--on-collapse stop)." if stop else
                            " Training goes on (--on-collapse stop ends it here).")
                if stop:
                    self.model.stop_training = True

        return _Monitor()
