"""A toy model with the layer types of the real one, small enough to build in a test."""

from __future__ import annotations

from pathlib import Path


def toy_hparams(upstream: int, downstream: int, n_features: int = 0, seed: int = 0) -> dict:
    return {
        "upstream": upstream, "downstream": downstream,
        "conv": [{"filters": 6, "kernel": 5, "dilation": 1, "pool": 3}, {"filters": 4, "kernel": 3, "dilation": 2, "pool": 2}],
        "dense": [{"units": 8, "dropout": 0.0}],
        "n_features": n_features, "seed": seed,
    }


def toy_model_file(folder: Path, upstream: int, downstream: int, n_features: int = 0, seed: int = 0) -> Path:
    """Save an untrained, randomly initialised toy model (seeded) to ``folder/toy.vxm.h5`` and return the path."""
    from varxpress.models.network import ExpressionModel

    model = ExpressionModel.from_hparams(toy_hparams(upstream, downstream, n_features, seed), name="toy",
                                         genome_build="toy", output_scale="log10")
    path = Path(folder) / "toy.vxm.h5"
    model.save(path)
    return path


def toy_genome(folder: Path, contigs: dict[str, str], genes) -> tuple[Path, Path]:
    """Write ``folder/g.fa`` (the contigs) and ``folder/tss.tsv`` (one ``gene_id name chrom pos strand`` row per
    gene, 1-based pos) and return their paths."""
    fa = Path(folder) / "g.fa"
    fa.write_text("".join(f">{name}\n{seq}\n" for name, seq in contigs.items()))
    tss = Path(folder) / "tss.tsv"
    tss.write_text("".join("\t".join(map(str, g)) + "\n" for g in genes))
    return fa, tss
