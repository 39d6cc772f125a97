"""Build, load, save and run the expression network together with its metadata.

The network (:func:`build_network`) is the Xpresso architecture (Agarwal & Shendure, Cell Reports 31:107663, 2020):

    promoter (n, L, 4) -> [Conv1D(same, relu) -> MaxPooling1D(pool, strides=pool)] x 1-4 -> Flatten
      -> Concatenate(halflife (n, F)) -> [Dense -> relu -> Dropout] x 1-2 -> Dense(1, linear)

``L = upstream + downstream`` is the window around the TSS in the direction of transcription (one-hot A, C, G, T;
N = all zeros). Layers are named predictably (``conv_1``, ``pool_1``, ..., ``flatten``, ``concat``, ``dense_1``,
``relu_1``, ``dropout_1``, ..., ``output``) so other engines (``fastpath.py``) can read the weights; see
``docs/model-format.md``.

A model file (``.vxm.h5``) is one HDF5 file: attributes ``varxpress_format``, ``metadata`` (JSON), ``hparams``
(JSON); weights under ``/weights/<layer name>/<kernel|bias>`` written with h5py, so the format does not depend on
Keras' own serialisation.

TensorFlow/Keras are imported only when a Keras network is needed (building, training, full recomputation): a
loaded model holds its weights as numpy arrays, checked against :func:`weight_shapes`, and builds its Keras network
on first use of :attr:`ExpressionModel.keras_model`, so scoring with the incremental engines never starts TensorFlow.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from varxpress.errors import ModelError, OutputError
from varxpress.io.outputs import atomic_path
from varxpress.lazy_keras import import_keras
from varxpress.models.hparams import validate_hparams
from varxpress.models.layers import BN_EPSILON, LayerInfo, iter_layers, layer_names, weight_shapes
from varxpress.models.registry import model_file
from varxpress.models.metadata import ModelMetadata, check_consistency, sha256_file
from varxpress.sequence.windows import WindowSpec

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

log = logging.getLogger(__name__)

__all__ = [
    "FORMAT_VERSION",
    "DEFAULT_MODEL_PATH",
    "LayerInfo",
    "ExpressionModel",
    "build_network",
    "iter_layers",
    "layer_names",
    "weight_shapes",
    "BN_EPSILON",
    "model_stem",
    "set_weights",
]

#: Version of the ``.vxm.h5`` layout written by :meth:`ExpressionModel.save`; files with a higher version are refused.
FORMAT_VERSION = 1

#: The bundled default model's file (:data:`varxpress.models.registry.DEFAULT`; see ``varxpress/data/NOTICE``).
DEFAULT_MODEL_PATH = Path(model_file(None))


def set_weights(network: Any, weights: Mapping[str, Mapping[str, np.ndarray]]) -> None:
    """Give a Keras network built by :func:`build_network` the weights ``{layer: {weight: array}}`` (in
    :func:`weight_shapes` order, as :meth:`ExpressionModel.numpy_weights` returns them)."""
    for layer in network.layers:
        if layer.weights:
            layer.set_weights(list(weights[layer.name].values()))


def model_stem(path: str | os.PathLike[str]) -> str:
    """A model file's name without ``.vxm.h5`` (another name: without its last suffix), for the names and folders
    made beside it: ``wtc11-lr0.001.vxm.h5`` -> ``wtc11-lr0.001``, so two models that differ after a dot do not
    share a report folder."""
    name = Path(path).name
    return name.removesuffix(".vxm.h5") if name.endswith(".vxm.h5") else (Path(name).stem or name)


def build_network(hparams: Mapping[str, Any]) -> Any:
    """Build the (untrained) Keras 3 network for ``hparams``.

    Inputs: ``promoter`` shape (None, L, 4) with ``L = upstream + downstream``, and ``halflife`` shape
    (None, n_features) (omitted when ``n_features == 0``). Output: shape (None, 1), linear.
    Weights are initialised deterministically from ``hparams["seed"]`` (Glorot normal for conv, Glorot uniform
    for dense, zero biases, as in Xpresso).

    Raises:
        ModelError: invalid hyperparameters.
    """
    hp = validate_hparams(hparams)
    keras = import_keras()  # TensorFlow takes seconds to start: imported only when a network is built
    layers = keras.layers

    seed = hp["seed"]
    length = hp["upstream"] + hp["downstream"]
    promoter = keras.Input(shape=(length, 4), name="promoter")
    x = promoter
    batch_norm, conv_dropout = bool(hp.get("batch_norm")), float(hp.get("conv_dropout") or 0.0)
    for i, c in enumerate(hp["conv"], 1):
        x = layers.Conv1D(
            c["filters"], c["kernel"], padding="same", dilation_rate=c["dilation"],
            activation=None if batch_norm else "relu",
            kernel_initializer=keras.initializers.GlorotNormal(seed=seed + i), name=f"conv_{i}",
        )(x)
        if batch_norm:  # before the ReLU, so that prediction can fold it into the convolution (keras_stages)
            x = layers.BatchNormalization(momentum=0.9, epsilon=BN_EPSILON, name=f"bn_{i}")(x)
            x = layers.Activation("relu", name=f"conv_relu_{i}")(x)
        if c["pool"] > 1:
            x = layers.MaxPooling1D(pool_size=c["pool"], strides=c["pool"], padding="valid", name=f"pool_{i}")(x)
        if conv_dropout > 0:
            x = layers.Dropout(conv_dropout, seed=seed + 400 + i, name=f"conv_dropout_{i}")(x)
    if hp.get("global_pool", "none") == "max":
        x = layers.GlobalMaxPooling1D(name="global_pool")(x)
    elif hp.get("global_pool", "none") == "avg":
        x = layers.GlobalAveragePooling1D(name="global_pool")(x)
    else:
        x = layers.Flatten(name="flatten")(x)
    inputs = [promoter]
    if hp["n_features"] > 0:
        halflife = keras.Input(shape=(hp["n_features"],), name="halflife")
        inputs.append(halflife)
        x = layers.Concatenate(axis=-1, name="concat")([x, halflife])
    for j, d in enumerate(hp["dense"], 1):
        x = layers.Dense(d["units"], kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 100 + j),
                         name=f"dense_{j}")(x)
        x = layers.Activation("relu", name=f"relu_{j}")(x)
        x = layers.Dropout(d["dropout"], seed=seed + 200 + j, name=f"dropout_{j}")(x)
    out = layers.Dense(1, kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 300), name="output")(x)
    return keras.Model(inputs=inputs if len(inputs) > 1 else promoter, outputs=out, name="varxpress")


# --------------------------------------------------------------------------------------------------------------------
# the model

class ExpressionModel:
    """A network with its metadata.

    Build one with :meth:`from_hparams` (untrained), :meth:`load` (a ``.vxm.h5`` file) or the constructor
    (a ``keras.Model`` made by :func:`build_network`).
    """

    def __init__(self, keras_model: Any, metadata: ModelMetadata, path: str | os.PathLike[str] | None = None,
                 sha256: str | None = None, weights: dict[str, dict[str, np.ndarray]] | None = None) -> None:
        """``keras_model``: the network, or None with ``weights`` (``{layer: {weight: array}}`` as
        :func:`weight_shapes` lists them, already checked), from which it is built on first use."""
        hp = validate_hparams(metadata.hparams)
        metadata.hparams = hp
        check_consistency(metadata, hp, f"model {metadata.name!r}")
        if keras_model is None and weights is None:
            raise ModelError(f"model {metadata.name!r}: neither a network nor its weights were given")
        if keras_model is not None:
            length = keras_model.inputs[0].shape[1]
            if length != hp["upstream"] + hp["downstream"]:
                raise ModelError(
                    f"model {metadata.name!r}: the Keras input length {length} does not match the window "
                    f"{hp['upstream']}+{hp['downstream']}"
                )
        self._keras = keras_model
        self._weights = None if keras_model is not None else weights
        self.metadata = metadata
        self.path: Path | None = Path(path) if path is not None else None
        self._sha256 = sha256
        self._default = np.asarray(metadata.default_features, dtype=np.float32).reshape(1, -1)

    # ---- construction -----------------------------------------------------------------------------------------------
    @classmethod
    def from_hparams(cls, hparams: Mapping[str, Any], name: str = "model", **metadata: Any) -> "ExpressionModel":
        """Untrained model for ``hparams``; ``metadata`` fills :class:`ModelMetadata` fields.

        Feature names default to ``feature_1..F`` and default features to zeros (the mean of z-scored features).
        """
        hp = validate_hparams(hparams)
        n = hp["n_features"]
        metadata.setdefault("feature_names", [f"feature_{i}" for i in range(1, n + 1)])
        metadata.setdefault("default_features", [0.0] * n)
        meta = ModelMetadata(name=name, upstream=hp["upstream"], downstream=hp["downstream"], hparams=hp, **metadata)
        return cls(build_network(hp), meta)

    # ---- the network ---------------------------------------------------------------------------------------------
    @property
    def keras_model(self) -> Any:
        """The Keras network (built, and TensorFlow started, on first use for a loaded model)."""
        if self._keras is None:
            net = build_network(self.metadata.hparams)
            set_weights(net, self._weights)
            self._keras, self._weights = net, None  # from now on the network's weights are the only copy
        return self._keras

    def numpy_weights(self) -> dict[str, dict[str, np.ndarray]]:
        """The weights as float32 arrays, ``{layer: {weight: array}}`` in :func:`weight_shapes` order: the loaded
        arrays while no Keras network exists, else the network's current values (after training, say)."""
        if self._keras is None:
            return self._weights
        shapes = weight_shapes(self.metadata.hparams)
        layers = {layer.name: layer for layer in self._keras.layers}
        return {name: dict(zip(ws, (np.asarray(v, dtype=np.float32) for v in layers[name].get_weights())))
                for name, ws in shapes.items()}

    # ---- properties --------------------------------------------------------------------------------------------------
    @property
    def window_spec(self) -> WindowSpec:
        """The input window."""
        return self.metadata.window_spec

    @property
    def n_features(self) -> int:
        """Number of half-life features the network takes (0: no ``halflife`` input)."""
        return int(self.metadata.hparams["n_features"])

    @property
    def hparams(self) -> dict[str, Any]:
        """The validated hyperparameters."""
        return self.metadata.hparams

    @property
    def sha256(self) -> str | None:
        """SHA-256 (hex) of the file this model was loaded from or last saved to; None for an unsaved model."""
        return self._sha256

    def __repr__(self) -> str:
        return (f"ExpressionModel(name={self.metadata.name!r}, window={self.metadata.upstream}+"
                f"{self.metadata.downstream}, n_features={self.n_features}, path={str(self.path) if self.path else None!r})")

    # ---- prediction -------------------------------------------------------------------------------------------------
    def predict(self, X: np.ndarray, features: np.ndarray | None = None, batch_size: int = 256) -> np.ndarray:
        """Predict expression for one-hot windows.

        Args:
            X: shape (n, L, 4), one-hot ACGT (N = zero row), L = ``window_spec.length``, in transcription direction.
            features: shape (n, F) or (F,) half-life features; None -> ``metadata.default_features`` for every row.
            batch_size: rows per forward pass.

        Returns:
            shape (n,), float64, on the model's output scale (``metadata.output_scale``). Deterministic: the same
            inputs and batch size give the same numbers.
        """
        X = np.asarray(X)
        length = self.window_spec.length
        if X.ndim != 3 or X.shape[1] != length or X.shape[2] != 4:
            raise ModelError(f"X has shape {X.shape}; model {self.metadata.name!r} needs (n, {length}, 4)")
        if batch_size < 1:
            raise ModelError(f"batch_size={batch_size} must be >= 1")
        n = X.shape[0]
        F = self.n_features
        if features is None:
            feats = np.broadcast_to(self._default, (n, F))
        else:
            feats = np.asarray(features, dtype=np.float32)
            if feats.ndim == 1:
                feats = np.broadcast_to(feats.reshape(1, -1), (n, feats.shape[0]))
            if feats.shape != (n, F):
                raise ModelError(f"features have shape {feats.shape}; model {self.metadata.name!r} needs ({n}, {F})")
        out = np.empty(n, dtype=np.float64)
        for lo in range(0, n, batch_size):
            hi = min(n, lo + batch_size)
            xb = np.ascontiguousarray(X[lo:hi], dtype=np.float32)
            inputs = [xb, np.ascontiguousarray(feats[lo:hi], dtype=np.float32)] if F > 0 else xb
            pred = self.keras_model.predict_on_batch(inputs)
            out[lo:hi] = np.asarray(pred, dtype=np.float64).reshape(-1)
        return out

    def to_log10(self, y: np.ndarray | float) -> np.ndarray:
        """Map outputs to log10 expression units (``y * label_sd + label_mean``); ModelError when unknown."""
        m = self.metadata
        if m.output_scale == "log10":
            return np.asarray(y, dtype=np.float64)
        if m.label_mean is None or m.label_sd is None:
            raise ModelError(f"model {m.name!r} does not record label_mean/label_sd; its output cannot be put in log10 units")
        return np.asarray(y, dtype=np.float64) * m.label_sd + m.label_mean

    # ---- file I/O -----------------------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], compress: bool = False) -> Path:
        """Write the model to ``path`` (``.vxm.h5`` recommended) through :func:`varxpress.io.outputs.atomic_path`;
        ``compress`` stores the weight arrays gzip-compressed (HDF5 filters: readers need nothing new; the zero
        blocks of a merged network then take almost no room).

        Returns the path. Raises OutputError when the folder cannot be written.
        """
        import h5py  # only where a model file is written or read: the scoring CLI imports this module at start-up

        path = Path(path)
        try:
            with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
                h5.attrs["varxpress_format"] = FORMAT_VERSION
                h5.attrs["metadata"] = json.dumps(self.metadata.to_dict(), sort_keys=True)
                h5.attrs["hparams"] = json.dumps(self.metadata.hparams, sort_keys=True)
                h5.attrs["layer_names"] = json.dumps([layer.name for layer in self.keras_model.layers])
                wgroup = h5.create_group("weights")
                for layer in self.keras_model.layers:
                    values = layer.get_weights()
                    if not values:
                        continue
                    names = [v.name.split("/")[-1].split(":")[0] for v in layer.weights]
                    g = wgroup.create_group(layer.name)
                    g.attrs["weight_names"] = json.dumps(names)
                    for wname, value in zip(names, values):
                        g.create_dataset(wname, data=np.asarray(value, dtype=np.float32),
                                         **({"compression": "gzip", "compression_opts": 9, "shuffle": True}
                                            if compress else {}))
        except OutputError:
            raise
        except OSError as exc:
            raise OutputError(f"cannot write model file {path}: {exc.strerror or exc}") from exc
        self.path = path
        self._sha256 = sha256_file(path)
        log.info("saved model %r to %s (sha256 %s)", self.metadata.name, path, self._sha256[:12])
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> "ExpressionModel":
        """Read a ``.vxm.h5`` file (None: the bundled default model, :data:`DEFAULT_MODEL_PATH`).

        Raises:
            ModelError: the file is missing, not HDF5, has no varxpress metadata, was written by a newer
                format, or its weights/window do not match the architecture. The message names the file and the fix.
        """
        import h5py  # see save()

        path = Path(path) if path is not None else DEFAULT_MODEL_PATH
        if not path.exists():
            raise ModelError(f"model file {path} does not exist; give the path of a .vxm.h5 model (convert a published "
                             f"Xpresso model with `varxpress import-xpresso MODEL.h5 --out {path}`)")
        if path.is_dir():
            raise ModelError(f"model file {path} is a folder; give the path of a .vxm.h5 file")
        if not h5py.is_hdf5(path):
            raise ModelError(f"model file {path} is not an HDF5 file; give a .vxm.h5 file written by varxpress")
        try:
            with h5py.File(path, "r") as h5:
                if "varxpress_format" not in h5.attrs:
                    if "model_config" in h5.attrs or "keras_version" in h5.attrs:
                        raise ModelError(f"{path} is a Keras model file, not a varxpress model; convert it with "
                                         f"`varxpress import-xpresso {path} --out MODEL.vxm.h5`")
                    raise ModelError(f"{path} has no varxpress metadata (attribute 'varxpress_format'); it was not "
                                     f"written by varxpress - give a .vxm.h5 file made by `varxpress train` or "
                                     f"`varxpress import-xpresso`")
                version = int(h5.attrs["varxpress_format"])
                if version > FORMAT_VERSION:
                    raise ModelError(f"{path} uses model format {version}, newer than this varxpress reads "
                                     f"({FORMAT_VERSION}); upgrade varxpress")
                try:
                    meta_d = json.loads(h5.attrs["metadata"])
                    hp_raw = json.loads(h5.attrs["hparams"])
                except (KeyError, ValueError, TypeError) as exc:
                    raise ModelError(f"{path}: metadata/hparams attributes are missing or not JSON ({exc}); the file "
                                     f"is damaged - re-create it") from exc
                weights: dict[str, dict[str, np.ndarray]] = {}
                if "weights" not in h5:
                    raise ModelError(f"{path} has no 'weights' group; the file is damaged - re-create it")
                for lname, g in h5["weights"].items():
                    names = json.loads(g.attrs.get("weight_names", "[]")) or list(g.keys())
                    weights[lname] = {n: np.asarray(g[n][()]) for n in names if n in g}
        except ModelError:
            raise
        except (OSError, KeyError, ValueError) as exc:
            raise ModelError(f"cannot read model file {path}: {exc}; the file is damaged - re-create it") from exc

        try:
            meta = ModelMetadata.from_dict(meta_d)
            hp = validate_hparams(hp_raw)
            meta.hparams = hp
            check_consistency(meta, hp, str(path))
        except ModelError as exc:
            msg = str(exc)
            raise ModelError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from exc

        shapes = weight_shapes(hp)
        missing = sorted(set(shapes) - set(weights))
        extra = sorted(set(weights) - set(shapes))
        if missing or extra:
            raise ModelError(f"{path}: stored weights do not match the architecture in its hparams (missing layers: "
                             f"{missing or 'none'}; unexpected layers: {extra or 'none'}); the file is damaged or was "
                             f"edited - re-create it")
        checked: dict[str, dict[str, np.ndarray]] = {}
        for lname, wshapes in shapes.items():
            stored = weights[lname]
            checked[lname] = {}
            for wname, shape in wshapes.items():
                if wname not in stored:
                    raise ModelError(f"{path}: layer {lname!r} lacks weight {wname!r}; re-create the file")
                if tuple(stored[wname].shape) != shape:
                    raise ModelError(f"{path}: weight {lname}/{wname} has shape {tuple(stored[wname].shape)} but "
                                     f"the architecture in its hparams needs {shape}; the weights do not "
                                     f"belong to this architecture - re-create the file")
                checked[lname][wname] = stored[wname].astype(np.float32)
        model = cls(None, meta, path=path, sha256=sha256_file(path), weights=checked)
        log.info("loaded model %r from %s", meta.name, path)
        return model
