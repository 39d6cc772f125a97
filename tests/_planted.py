"""Synthetic expression data with known structure, for the training/evaluation tests.

Every sequence is random ACGT of ``length`` bases with the TSS at index ``length // 2`` and:

* motif ``A`` planted exactly once, either in the *core* region (TSS-relative ``[-80, -40)``, where it counts) or
  in a *decoy* region (``[+40, +80)``, where it does not): k-mer counts are the same either way, so only a model
  that sees positions can use it;
* motifs ``B`` (somewhere in ``[-40, 0)``) and ``C`` (in ``[0, 40)``), each present with probability 1/2,
  counting only *together* (an AND): a linear model of k-mer counts captures at most 2/3 of that term's variance.

label = 2 * [A in core] + 1.5 * [B and C] + 0.5 + noise(sd 0.2). A perfect model has r² ≈ 0.97; the training mean
≈ 0; a k-mer ridge at best ≈ 0.19 (in practice less, it also fits noise k-mers).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

MOTIF_A = "TCGGACTA"
MOTIF_B = "GCATTCGA"
MOTIF_C = "AGTCCGTT"


def planted(n: int, length: int = 200, seed: int = 0, noise: float = 0.2,
            info: list | None = None) -> tuple[list[str], np.ndarray]:
    """``n`` sequences of ``length`` (>= 200) and their labels (see the module docstring).

    ``info``, when given, receives one dict per sequence: ``core`` (A counts), ``a_start`` (0-based), ``b``, ``c``.
    """
    rng = np.random.default_rng(seed)
    tss = length // 2
    seqs, labels = [], np.zeros(n)
    for i in range(n):
        s = list("".join(rng.choice(list("ACGT"), size=length)))
        core = rng.random() < 0.5
        a_start = tss + (-80 if core else 40) + int(rng.integers(0, 40 - len(MOTIF_A)))
        s[a_start:a_start + 8] = MOTIF_A
        b, c = rng.random() < 0.5, rng.random() < 0.5
        slots = [tss - 40, tss]  # B in [-40, 0), C in [0, 40)
        if b:
            start = slots[0] + int(rng.integers(0, 40 - 8))
            s[start:start + 8] = MOTIF_B
        if c:
            start = slots[1] + int(rng.integers(0, 40 - 8))
            s[start:start + 8] = MOTIF_C
        seqs.append("".join(s))
        if info is not None:
            info.append({"core": core, "a_start": a_start, "b": b, "c": c})
        labels[i] = 2.0 * core + 1.5 * (b and c) + 0.5 + rng.normal(0, noise)
    return seqs, labels


def write_fasta(path: Path, ids: list[str], seqs: list[str]) -> Path:
    with open(path, "w") as handle:
        for name, seq in zip(ids, seqs):
            handle.write(f">{name}\n")
            for i in range(0, len(seq), 60):
                handle.write(seq[i:i + 60] + "\n")
    return path


def write_labels(path: Path, ids: list[str], labels: np.ndarray, header: bool = True) -> Path:
    with open(path, "w") as handle:
        if header:
            handle.write("gene_id\texpression\n")
        for name, value in zip(ids, labels):
            handle.write(f"{name}\t{value:.6f}\n")
    return path


def planted_files(folder: Path, n: int = 2000, length: int = 240, seed: int = 0) -> tuple[Path, Path]:
    """Write ``seqs.fa`` and ``labels.tsv`` of :func:`planted` data into ``folder``."""
    seqs, labels = planted(n, length, seed)
    ids = [f"seq{i:05d}" for i in range(n)]
    return write_fasta(folder / "seqs.fa", ids, seqs), write_labels(folder / "labels.tsv", ids, labels)


def planted_set(folder: Path, n: int, seed: int, test_size: int, valid_size: int) -> Path:
    """A prepared set ``folder/p.vxd.h5`` of ``n`` planted sequences of 240 bp (ids ``p0``...), randomly split."""
    from varxpress.io.tables import read_label_table
    from varxpress.learning import dataset

    seqs, labels = planted(n, 240, seed=seed)
    ids = [f"p{i}" for i in range(n)]
    write_fasta(folder / "p.fa", ids, seqs)
    write_labels(folder / "p.tsv", ids, labels)
    options = dataset.SequenceSetOptions(test_size=test_size, valid_size=valid_size, seed=0)
    return dataset.prepare_sequences(folder / "p.fa", read_label_table(folder / "p.tsv"), folder / "p.vxd.h5",
                                     options=options)


#: A small network that can learn the planted structure in a few seconds on a CPU (window 100 + 100 bases).
SMALL_HPARAMS = {
    "upstream": 100,
    "downstream": 100,
    "conv": [{"filters": 16, "kernel": 10, "dilation": 1, "pool": 20}],
    "dense": [{"units": 32, "dropout": 0.0}],
    "n_features": 0,
    "learning_rate": 0.005,
    "batch_size": 32,
    "optimizer": "adam",
    "epochs": 40,
    "patience": 6,
    "seed": 1,
}


_TRAINED: dict = {}


def trained_planted(tmp_path_factory) -> dict:
    """Prepare the planted set (2,000 sequences of 240 bp, TSS at 120; 200 test, 200 validation) and train
    :data:`SMALL_HPARAMS` on it through ``varxpress train``, once per test session.

    Returns a dict: ``folder``, ``dataset``, ``model``, ``report``, ``hparams`` (paths), ``rc`` (train's exit
    status with ``--require-beats-baselines``), ``seqs``, ``info``, ``ids``.
    """
    if _TRAINED:
        return _TRAINED
    import yaml

    from varxpress.cli import main

    folder = tmp_path_factory.mktemp("planted")
    info: list = []
    seqs, labels = planted(2000, 240, seed=0, info=info)
    ids = [f"seq{i:05d}" for i in range(len(seqs))]
    write_fasta(folder / "seqs.fa", ids, seqs)
    write_labels(folder / "labels.tsv", ids, labels)
    (folder / "hparams.yaml").write_text(yaml.safe_dump(SMALL_HPARAMS))
    assert main(["prepare", "--sequences", str(folder / "seqs.fa"), "--labels", str(folder / "labels.tsv"),
                 "--test-size", "200", "--valid-size", "200", "-o", str(folder / "set.vxd.h5")]) == 0
    rc = main(["train", "--dataset", str(folder / "set.vxd.h5"), "--hparams", str(folder / "hparams.yaml"),
               "-o", str(folder / "model.vxm.h5"), "--report-dir", str(folder / "report"),
               "--require-beats-baselines"])
    _TRAINED.update(folder=folder, dataset=folder / "set.vxd.h5", model=folder / "model.vxm.h5",
                    report=folder / "report", hparams=folder / "hparams.yaml", rc=rc, seqs=seqs, info=info, ids=ids)
    return _TRAINED
