"""Whether the genes a model is judged on were held out of its training (``varxpress evaluate``).

A verdict against the baselines means something only on genes the model never trained on: on its own training genes
any network looks good. ``evaluate`` may be given any prepared set, so before it judges, :func:`held_out` checks what
the model's metadata allows (its ``training_data``: the set's hash, its split method and held-out contigs):

* the set the model was trained on (same SHA-256): its ``test`` and ``valid`` splits are held out by construction,
  except for a member of a ``train --cv-folds`` ensemble, which trained on all but its own fold of the train and
  valid rows: only ``test`` is held out of it (and, on another set split by contig, only its ``test_chroms``);
* a model trained on a split by contig, judged on a genomic set: every gene must lie on a contig the model held out
  (``test_chroms`` and ``valid_chroms``); one that does not would put training genes among the judged ones, so
  :func:`held_out` refuses (:class:`~varxpress.errors.DatasetError`) and says how many and where;
* anything else (an imported model that records no training set, a random or leak-group split of another set):
  cannot be checked; the evaluation goes on with a warning and records the status as ``unverified``.

The ``train`` and ``all`` splits are not held out: they get metrics but no verdict.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

from varxpress.errors import DatasetError
from varxpress.sequence.gene_index import canonical_contig

__all__ = ["HeldOut", "HELD_OUT_SPLITS", "held_out"]

log = logging.getLogger(__name__)

HELD_OUT_SPLITS = ("test", "valid")  #: the splits a verdict may be given on


@dataclass(frozen=True)
class HeldOut:
    """``status``: ``verified``, ``unverified`` or ``no``; ``reason``: why, in words."""

    status: str
    reason: str

    def as_dict(self) -> dict:
        return asdict(self)


def _contig(name: str) -> str:
    """A contig name compared across sets: the genome-wide key (:func:`canonical_contig`: ``chr`` prefix, ``M`` =
    ``MT``), case ignored too, since sets of one genome from different sources spell it differently (``ChrIV``)."""
    return canonical_contig(str(name)).lower()


def held_out(model, pset, split: str) -> HeldOut:
    """Whether the genes of ``split`` of ``pset`` were held out of ``model``'s training (see the module docstring).

    Raises:
        DatasetError: the model was trained on a contig split and some of these genes lie on contigs it trained on.
    """
    if split not in HELD_OUT_SPLITS:
        return HeldOut("no", f"the {split!r} split holds the genes a model of this set trains on; no verdict")
    trained_on = model.metadata.training_data or {}
    if not trained_on.get("sha256"):
        return HeldOut("unverified", "the model records no training set (an imported model): whether these genes "
                                     "were held out of its training cannot be checked")
    cv = trained_on.get("cv_folds")  # a cross-validation member: the set's train and valid rows were dealt into
    # folds, and it trained on every fold but its own, so only the set's test rows were held out of it
    if cv and split != "test":
        return HeldOut("no", f"a cross-validation member (fold {trained_on.get('cv_fold')} of {cv}) trained on most "
                             f"of its set's {split!r} rows: only the 'test' split is held out of it; no verdict")
    if trained_on["sha256"] == pset.sha256:
        return HeldOut("verified", f"the {split} split of the set the model was trained on")
    if trained_on.get("split_method") == "chrom" and pset.kind == "genomic":
        held = sorted({*(trained_on.get("test_chroms") or []), *([] if cv else trained_on.get("valid_chroms") or [])})
        keys = {_contig(c) for c in held}
        chroms = pset.column("chrom")[pset.indices(split)]
        seen = sorted({str(c) for c in chroms if _contig(c) not in keys})
        if seen:
            n = sum(_contig(c) not in keys for c in chroms)
            raise DatasetError(f"{n} of the {len(chroms)} genes of the {split!r} split of {pset.path} lie on contigs "
                               f"the model trained on ({', '.join(seen[:10])}{' ...' if len(seen) > 10 else ''}; it "
                               f"held out only {', '.join(held)}): its metrics there would count training genes. "
                               f"Evaluate it on a set split by the contigs it held out, or on the set it was "
                               f"trained on; --split all gives metrics without a verdict")
        return HeldOut("verified", f"every gene lies on a contig the model held out ({', '.join(held)})")
    return HeldOut("unverified", f"the model was trained on another set ({trained_on.get('split_method')} split): "
                                 f"which of these genes it saw cannot be checked")
