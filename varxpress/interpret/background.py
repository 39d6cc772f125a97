"""Background distributions of |delta|: what a score's size means for a given model.

A background is a large sample of ``|delta|`` of single-nucleotide substitutions drawn uniformly from the set of
all (gene, window position, alternative base) triples of the promoter windows of a TSS set on a genome: every
possible SNV of every gene's window (reference ``N`` positions excluded), as ``varxpress score`` would report it
per (variant, allele, gene). :meth:`Background.percentile` places a new ``|delta|`` in it.

Percentile (ties counted as "at or below"): for a value ``v`` and the ``n`` background values ``b_i``::

    percentile(v) = 100 * #{i : b_i <= v} / n

so a value equal to the largest background value is at 100, one below the smallest at 0, and the comparison is
made against the stored values exactly (stored as float32; the query is compared after widening them to float64).
NaN gives NaN.

File (``varxpress background``; default name ``<model file>.background.h5``, beside the model or an ensemble's
manifest, see :func:`default_path`): HDF5 with

* attribute ``varxpress_background`` = format version (1);
* attribute ``provenance``: JSON (model name and SHA-256, reference FASTA name and ``.fai`` MD5, TSS file name and
  SHA-256 and offset, genes used and skipped, size of the SNV space, sample size, seed, whether exhaustive,
  varxpress version, command line, creation time, quantiles of |delta| and of the signed delta);
* dataset ``abs_delta``: the sampled ``|delta|`` values, sorted ascending, float32 (gzip).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from varxpress.sequence.windows import ref_window
from varxpress.errors import VarxpressError
from varxpress.io.outputs import atomic_path
from varxpress.models.ensemble import MANIFEST

log = logging.getLogger(__name__)

__all__ = ["Background", "BackgroundError", "build_background", "default_path"]

FORMAT_VERSION = 1
SUFFIX = ".background.h5"
DEFAULT_N_SNVS = 200_000


class BackgroundError(VarxpressError, ValueError):
    """A background file that is missing, damaged, or made for another model."""


def default_path(model_path: str | os.PathLike) -> Path:
    """Where a model's background lives by default: ``<model file>.background.h5`` beside it.

    An ensemble's (combination's) is beside its manifest; for an ensemble folder that is inside the folder, beside
    its ``ensemble.json``, so that the folder and its manifest name one background.
    """
    path = Path(model_path)
    if path.is_dir():
        path = path / MANIFEST
    return Path(f"{path}{SUFFIX}")


@dataclass
class Background:
    """A sorted sample of background ``|delta|`` values with its provenance.

    Attributes:
        abs_delta: shape (n,), sorted ascending, the background ``|delta|`` values (model output scale).
        provenance: where they came from (see the module docstring).
        path: the file it was loaded from or saved to.
    """

    abs_delta: np.ndarray
    provenance: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def __post_init__(self) -> None:
        values = np.asarray(self.abs_delta, dtype=np.float32).reshape(-1)
        if values.size == 0:
            raise BackgroundError("a background needs at least one value")
        if not np.isfinite(values).all() or (values < 0).any():
            raise BackgroundError("background |delta| values must be finite and >= 0")
        self.abs_delta = np.sort(values)
        self._wide = self.abs_delta.astype(np.float64)

    def __len__(self) -> int:
        return int(self.abs_delta.size)

    @property
    def model_sha256(self) -> str | None:
        """SHA-256 of the model file the background was built with."""
        return self.provenance.get("model_sha256")

    def percentile(self, abs_delta: np.ndarray | float) -> np.ndarray:
        """Percentile of each ``|delta|`` against the background: ``100 * #{b <= v} / n`` (ties count as below).

        Args:
            abs_delta: values ``>= 0`` (pass ``abs(delta)``), any shape; NaN allowed.

        Returns:
            float64 array of the same shape, in ``[0, 100]``; NaN where the input is NaN.

        Raises:
            ValueError: a negative value (a signed delta was passed).
        """
        v = np.asarray(abs_delta, dtype=np.float64)
        if (v < 0).any():
            raise ValueError("percentile() takes |delta| (>= 0); pass np.abs(delta)")
        counts = np.searchsorted(self._wide, np.where(np.isnan(v), 0.0, v), side="right")
        return np.where(np.isnan(v), np.nan, 100.0 * counts / self._wide.size)

    def quantile(self, q: float | np.ndarray) -> np.ndarray:
        """The background ``|delta|`` at quantile(s) ``q`` in [0, 1] (linear interpolation)."""
        return np.quantile(self._wide, q)

    # ---- files ---------------------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write the background to ``path`` (HDF5) atomically; returns the path."""
        import h5py

        path = Path(path)
        with atomic_path(path) as tmp:
            with h5py.File(tmp, "w") as h5:
                h5.attrs["varxpress_background"] = FORMAT_VERSION
                h5.attrs["provenance"] = json.dumps(self.provenance, sort_keys=True)
                h5.create_dataset("abs_delta", data=self.abs_delta, compression="gzip", compression_opts=9,
                                  shuffle=True)
        self.path = path
        log.info("wrote background of %d |delta| values to %s", len(self), path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Background":
        """Read a background file.

        Raises:
            BackgroundError: missing, not HDF5, not a varxpress background, or from a newer format.
        """
        import h5py

        path = Path(path)
        if not path.is_file():
            raise BackgroundError(f"background file {path} does not exist; build one with `varxpress background "
                                  f"--model MODEL --fasta GENOME`")
        if not h5py.is_hdf5(path):
            raise BackgroundError(f"background file {path} is not HDF5; give a file written by `varxpress background`")
        try:
            with h5py.File(path, "r") as h5:
                if "varxpress_background" not in h5.attrs or "abs_delta" not in h5:
                    raise BackgroundError(f"{path} is not a varxpress background file (no 'varxpress_background' "
                                          f"attribute or 'abs_delta' dataset)")
                version = int(h5.attrs["varxpress_background"])
                if version > FORMAT_VERSION:
                    raise BackgroundError(f"{path} uses background format {version}, newer than this varxpress "
                                          f"reads ({FORMAT_VERSION}); upgrade varxpress")
                provenance = json.loads(h5.attrs.get("provenance", "{}"))
                values = np.asarray(h5["abs_delta"][()])
        except BackgroundError:
            raise
        except (OSError, KeyError, ValueError) as exc:
            raise BackgroundError(f"cannot read background file {path}: {exc}; re-create it") from exc
        bg = cls(values, provenance, path)
        return bg

    @classmethod
    def for_model(cls, model_path: str | os.PathLike, model_sha256: str | None = None) -> "Background | None":
        """The background stored beside a model (``<model>.background.h5``), or None where there is none.

        With ``model_sha256`` (the loaded model's :attr:`~varxpress.models.network.ExpressionModel.sha256`), a background
        built for another model file is refused with a warning (None is returned): its percentiles would be wrong.
        """
        path = default_path(model_path)
        if not path.is_file():
            log.debug("no background beside %s (looked for %s)", model_path, path)
            return None
        bg = cls.load(path)
        if model_sha256 is not None and bg.model_sha256 not in (None, model_sha256):
            log.warning("background %s was built for another model (sha256 %s, not %s): percentiles left out; "
                        "rebuild it with `varxpress background --model %s`", path, str(bg.model_sha256)[:12],
                        model_sha256[:12], model_path)
            return None
        return bg

    def check_model(self, model_sha256: str | None) -> None:
        """Raise :class:`BackgroundError` when the background was built for another model file."""
        if model_sha256 is not None and self.model_sha256 not in (None, model_sha256):
            raise BackgroundError(f"background {self.path} was built for model sha256 {self.model_sha256}, not "
                                  f"{model_sha256}; rebuild it with `varxpress background`")


# ---------------------------------------------------------------------------------------------------------------------
# building


def _valid_positions(onehot: np.ndarray) -> np.ndarray:
    """Window indices whose reference base is A, C, G or T."""
    return np.flatnonzero(onehot.any(axis=1))


def build_background(predictor, tss_list: list, n_snvs: int = DEFAULT_N_SNVS, seed: int = 0, progress: bool = False,
                     max_n_fraction: float = 1.0) -> tuple[Background, np.ndarray]:
    """Sample SNVs uniformly from every (gene, window position, alternative base) and score them.

    Args:
        predictor: the :class:`~varxpress.scoring.engine.Predictor` (model or ensemble, genome, gene features) or
            :class:`~varxpress.scoring.combined.CombinedPredictor` (combined deltas): the deltas ``varxpress score``
            reports.
        tss_list: the genes (those on contigs absent from the genome are skipped and counted).
        n_snvs: sample size (without replacement); ``<= 0`` or at least the number of possible SNVs: all of them.
        seed: seed of the sample.
        max_n_fraction: genes whose reference window is more than this fraction ``N`` are left out (counted).

    Returns:
        ``(background, signed_deltas)``: the background (provenance filled except file names) and the sampled
        signed deltas, shape (n,), in sampling order (for tests and summaries).
    """
    genome, model = predictor.genome, predictor.model
    spec = model.window_spec
    genes, counts, skipped, too_many_n = [], [], 0, 0
    for t in tss_list:  # pass 1: the size of each gene's SNV space
        if genome.resolve(t.chrom) is None:
            skipped += 1
            continue
        seq = ref_window(genome, t, spec).seq
        n_valid = sum(seq.count(b) for b in "ACGT")
        if n_valid == 0 or (len(seq) - n_valid) > max_n_fraction * len(seq):
            too_many_n += 1
            continue
        genes.append(t)
        counts.append(3 * n_valid)
    if skipped:
        log.warning("%d genes lie on contigs absent from %s: left out of the background", skipped, genome.path)
    if too_many_n:
        log.info("%d genes have windows more than %.0f%% N: left out of the background", too_many_n,
                 100 * max_n_fraction)
    if not genes:
        raise BackgroundError("no gene of the TSS set has a window with A/C/G/T bases on this genome")
    counts_a = np.asarray(counts, dtype=np.int64)
    bounds = np.concatenate([[0], np.cumsum(counts_a)])
    space = int(bounds[-1])
    rng = np.random.default_rng(seed)
    exhaustive = n_snvs <= 0 or n_snvs >= space
    picks = np.arange(space, dtype=np.int64) if exhaustive else np.sort(rng.choice(space, size=n_snvs, replace=False))
    gene_of = np.searchsorted(bounds, picks, side="right") - 1
    deltas = np.empty(picks.size, dtype=np.float64)
    used = np.unique(gene_of)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=int(used.size), unit=" genes", desc="background")
    lo = np.searchsorted(gene_of, used, side="left")
    hi = np.searchsorted(gene_of, used, side="right")
    for g, a, b in zip(used, lo, hi):  # pass 2: score the picks of each gene
        t = genes[g]
        onehot = predictor.reference(t)[1]
        valid = _valid_positions(onehot)
        local = picks[a:b] - bounds[g]
        idx = valid[local // 3]
        ref_base = onehot[idx].argmax(axis=1)
        alt_base = (ref_base + 1 + local % 3) % 4
        deltas[a:b] = predictor.substitution_deltas(t, [[(int(i), int(k))] for i, k in zip(idx, alt_base)])
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    qs = [0.5, 0.9, 0.95, 0.99, 0.999]
    md = model.metadata
    provenance = {
        "model_name": md.name, "model_sha256": model.sha256, "output_scale": md.output_scale,
        "label_sd": md.label_sd, "upstream": spec.upstream, "downstream": spec.downstream,
        "genome_fai_md5": genome.fingerprint(), "genome_file": Path(str(genome.path)).name,
        "n_genes": len(genes), "n_genes_sampled": int(used.size), "n_genes_skipped": skipped,
        "n_genes_too_many_n": too_many_n, "max_n_fraction": max_n_fraction,
        "snv_space": space, "n_snvs": int(picks.size), "exhaustive": bool(exhaustive), "seed": seed,
        "sampling": "uniform without replacement over (gene, window position with an A/C/G/T reference base, "
                    "alternative base); model default features unless given",
        "fast_path": predictor.fast,
        "abs_delta_quantiles": {str(q): float(np.quantile(np.abs(deltas), q)) for q in qs},
        "delta_mean": float(deltas.mean()), "delta_sd": float(deltas.std()),
        "fraction_negative": float((deltas < 0).mean()),
    }
    return Background(np.abs(deltas), provenance), deltas
