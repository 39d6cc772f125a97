"""Short sequence models (e.g. trained on a 200-bp MPRA library): global pooling, reverse-complement augmentation,
and the window rule carried by the model file (score and mutagenesis read what its metadata says)."""

from __future__ import annotations

import json

import cyvcf2
import h5py
import numpy as np
import pytest

from varxpress.models import fastpath
from varxpress.cli import main
from varxpress.errors import ModelError
from varxpress.models.hparams import flattened_length, validate_hparams
from varxpress.models.network import ExpressionModel, build_network, layer_names

from tests.test_pipeline import GENES, inputs, run_score, vxp_entries  # noqa: F401  (inputs is a fixture)

UP, DOWN = 20, 10


def _short_hparams(global_pool: str, upstream: int = UP, downstream: int = DOWN) -> dict:
    return {"upstream": upstream, "downstream": downstream,
            "conv": [{"filters": 6, "kernel": 5, "dilation": 1, "pool": 2},
                     {"filters": 5, "kernel": 3, "dilation": 2, "pool": 1}],
            "dense": [{"units": 4, "dropout": 0.1}], "n_features": 0, "global_pool": global_pool,
            "rc_augment": True, "seed": 2}


def _save(folder, hp: dict, name: str = "short"):
    model = ExpressionModel.from_hparams(hp, name=name, output_scale="log10")
    # move the output off zero so the deltas of the untrained network are not all tiny
    out = model.keras_model.get_layer("output")
    out.set_weights([w * 5 for w in out.get_weights()])
    path = folder / f"{name}.vxm.h5"
    model.save(path)
    return path, model


def reanchor(path, upstream: int, downstream: int) -> None:
    """Rewrite a model file's window (metadata and hyperparameters) in place; the total length stays."""
    with h5py.File(path, "r+") as h5:
        meta, hp = json.loads(h5.attrs["metadata"]), json.loads(h5.attrs["hparams"])
        for d in (meta, meta["hparams"], hp):
            d["upstream"], d["downstream"] = upstream, downstream
        h5.attrs["metadata"], h5.attrs["hparams"] = json.dumps(meta), json.dumps(hp)


def test_optional_keys_leave_existing_hparams_unchanged() -> None:
    plain = validate_hparams({"upstream": 20, "downstream": 10, "conv": [{"filters": 2, "kernel": 3}],
                              "dense": [{"units": 2}]})
    assert "global_pool" not in plain and "rc_augment" not in plain
    hp = validate_hparams(_short_hparams("max"))
    assert hp["global_pool"] == "max" and hp["rc_augment"] is True
    assert flattened_length(hp) == 5 and "global_pool" in layer_names(hp) and "flatten" not in layer_names(hp)
    assert build_network(hp).get_layer("global_pool").output.shape[-1] == 5
    with pytest.raises(ModelError, match="global_pool"):
        validate_hparams(_short_hparams("sum"))
    with pytest.raises(ModelError, match="rc_augment"):
        validate_hparams({**_short_hparams("max"), "rc_augment": "yes"})


@pytest.mark.parametrize("pool", ["max", "avg"])
def test_global_pool_model_round_trips_and_scores_as_full_recomputation(inputs, tmp_path, pool):  # noqa: F811
    """A global average is read by the incremental engine as a Flatten whose Dense rows are averaged; a global
    maximum has no rule there and falls back to full recomputation. Either way score gives full recomputation's
    numbers."""
    path, built = _save(tmp_path, _short_hparams(pool))
    model = ExpressionModel.load(path)
    x = np.eye(4, dtype=np.float32)[np.random.default_rng(0).integers(0, 4, (3, UP + DOWN))]
    np.testing.assert_allclose(model.predict(x), built.predict(x), atol=1e-6)
    assert model.hparams["global_pool"] == pool
    assert fastpath.supports(model) == (pool == "avg")
    default, full = tmp_path / "a.tsv", tmp_path / "b.tsv"
    assert run_score(inputs, path, tmp_path / "a.vcf", "--tsv", default) == 0
    assert run_score(inputs, path, tmp_path / "b.vcf", "--tsv", full, "--no-fast-path") == 0
    body = [[line for line in f.read_text().splitlines() if not line.startswith("##")] for f in (default, full)]
    tables = [[line.split("\t") for line in b] for b in body]
    assert tables[0][0] == tables[1][0] and len(tables[0]) == len(tables[1])
    column, first = tables[0][0].index("delta"), tables[0][0].index("ref_pred")
    deltas = [np.array([float(r[column]) for r in t[1:]]) for t in tables]
    assert len(deltas[0]) > 3 and np.any(deltas[0] != 0)
    if pool == "max":
        assert body[0] == body[1]  # the same full recomputation either way
    else:  # the engine sums in another order: equal to float32 rounding
        np.testing.assert_allclose(deltas[0], deltas[1], rtol=0, atol=1e-5)
        assert [r[:first] for r in tables[0]] == [r[:first] for r in tables[1]]  # the same variants and genes


def test_rc_augmentation_flips_about_half_the_rows_with_labels_kept() -> None:
    from varxpress.learning.batches import WindowBatches
    from varxpress.learning.prepared import Arrays

    rng = np.random.default_rng(1)
    X = np.eye(4, dtype=np.uint8)[rng.integers(0, 4, (64, 12))]
    data = Arrays(X, np.zeros((64, 0), np.float32), np.arange(64, dtype=np.float32), [str(i) for i in range(64)],
                  np.arange(64))
    batches = WindowBatches.make(data, 6, 6, data.labels, 64, False, False, 0, rc_augment=True)
    xb, yb = batches[0]
    flipped = [not np.array_equal(xb[i], X[i]) for i in range(64)]
    for i in range(64):
        assert np.array_equal(xb[i], X[i] if not flipped[i] else X[i][::-1, ::-1])  # reverse complement, ACGT
    assert 16 < sum(flipped) < 48 and yb.tolist() == list(range(64))
    plain = WindowBatches.make(data, 6, 6, data.labels, 64, False, False, 0)
    assert np.array_equal(plain[0][0], X)


def _genes_scored(tsv) -> dict[str, set[str]]:
    rows = [line.split("\t") for line in tsv.read_text().splitlines() if not line.startswith("##")]
    head = rows[0]
    out: dict[str, set[str]] = {}
    for row in rows[1:]:
        rec = dict(zip(head, row))
        if rec.get("gene_id"):
            out.setdefault(rec["id"], set()).add(rec["gene_id"])
    return out


def test_the_window_in_the_model_file_decides_what_score_and_mutagenesis_read(inputs, tmp_path):  # noqa: F811
    path, _ = _save(tmp_path, _short_hparams("none"))
    a, b = tmp_path / "a.tsv", tmp_path / "b.tsv"
    assert run_score(inputs, path, tmp_path / "a.vcf", "--tsv", a) == 0
    mut_a = tmp_path / "ma"
    assert main(["mutagenesis", "--fasta", str(inputs["fasta"]), "--tss", str(inputs["tss"]), "--model", str(path),
                 "--gene", "G1", "--out-prefix", str(mut_a), "--no-plots", "--quiet"]) == 0
    reanchor(path, 10, 20)  # same network, TSS moved 10 bases towards the window's start
    assert ExpressionModel.load(path).window_spec.upstream == 10
    assert run_score(inputs, path, tmp_path / "b.vcf", "--tsv", b) == 0
    mut_b = tmp_path / "mb"
    assert main(["mutagenesis", "--fasta", str(inputs["fasta"]), "--tss", str(inputs["tss"]), "--model", str(path),
                 "--gene", "G1", "--out-prefix", str(mut_b), "--no-plots", "--quiet"]) == 0
    before, after = _genes_scored(a), _genes_scored(b)
    # snv_plus lies 15 bp upstream of G1 (+, TSS at 60): read with 20 bp upstream, not with 10
    assert "G1" in before["snv_plus"] and "snv_plus" not in after
    skip = {rec.ID: rec.INFO.get("VXP_SKIP") for rec in cyvcf2.VCF(str(tmp_path / "b.vcf"))}
    assert skip["snv_plus"] is None  # outside every window of this model: written as read, no VXP either

    def offsets(prefix):
        lines = [line.split("\t") for line in open(f"{prefix}.tsv") if not line.startswith("##")]
        col = lines[0].index("offset")
        return sorted({int(r[col]) for r in lines[1:]})

    assert offsets(mut_a) == list(range(-20, 10)) and offsets(mut_b) == list(range(-10, 20))
