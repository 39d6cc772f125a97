"""Background distributions of |delta|: the percentile against brute force, the sample against every SNV."""

from __future__ import annotations

import json
import logging
import random
import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from varxpress.interpret.background import Background, BackgroundError, build_background, default_path
from varxpress.cli import main
from varxpress.sequence.encode import one_hot
from varxpress.io.genome import Genome
from varxpress.io.tss import TSS
from varxpress.sequence.windows import ref_window
from varxpress.scoring.engine import Predictor

UP, DOWN = 20, 10
RNG = random.Random(7)
CHR1 = "".join(RNG.choice("ACGT") for _ in range(200))
CHR2 = "".join(RNG.choice("ACGT") for _ in range(60))
GENES = [("G1", "PLUS1", "chr1", 60, "+"), ("G2", "MINUS1", "chr1", 120, "-"), ("G3", "EDGE", "chr2", 5, "+")]


def brute_percentile(background: np.ndarray, values: np.ndarray) -> np.ndarray:
    """100 * #{b <= v} / n, one comparison per pair."""
    out = []
    for v in values:
        out.append(np.nan if np.isnan(v) else 100.0 * sum(1 for b in background if b <= v) / len(background))
    return np.array(out)


# ------------------------------------------------------------------------------------------------ percentile


def test_percentile_equals_brute_force_with_ties_and_edges():
    rng = np.random.default_rng(3)
    values = rng.integers(0, 20, size=200) / 8.0  # exact in float32, many ties
    bg = Background(values)
    queries = np.concatenate([np.unique(values), [0.0, values.min() - 0.01 if values.min() > 0 else 0.0,
                                                  values.max(), values.max() + 1, 1 / 16, np.nan]])
    queries = np.abs(queries)
    got = bg.percentile(queries)
    want = brute_percentile(bg.abs_delta.astype(np.float64), queries)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got[~np.isnan(got)], want[~np.isnan(want)], rtol=0, atol=1e-12)
    assert bg.percentile(values.max()) == 100.0  # ties count as "at or below"
    assert bg.percentile(-0.0) == pytest.approx(100.0 * (values <= 0).mean())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 10, width=32), min_size=1, max_size=40),
       st.lists(st.floats(0, 12, width=32), min_size=1, max_size=20))
def test_percentile_property_brute_force(background, queries):
    bg = Background(np.array(background))
    q = np.array(queries + background[:3])
    np.testing.assert_allclose(bg.percentile(q), brute_percentile(bg.abs_delta.astype(np.float64), q), atol=1e-12)


def test_percentile_keeps_shape_and_refuses_signed_values():
    bg = Background(np.arange(10, dtype=float))
    assert bg.percentile(np.zeros((2, 3))).shape == (2, 3)
    assert float(bg.percentile(4.5)) == 50.0
    with pytest.raises(ValueError, match="abs"):
        bg.percentile(np.array([0.1, -0.2]))


def test_background_rejects_bad_values():
    with pytest.raises(BackgroundError, match="needs at least one value"):
        Background(np.array([]))
    with pytest.raises(BackgroundError, match="must be finite and >= 0"):
        Background(np.array([0.1, -1.0]))
    with pytest.raises(BackgroundError, match="must be finite and >= 0"):
        Background(np.array([0.1, np.nan]))


# ------------------------------------------------------------------------------------------------ files


def test_save_load_round_trip_and_lookup_beside_model(tmp_path, caplog):
    model = tmp_path / "m.vxm.h5"
    model.write_bytes(b"not really a model")
    assert Background.for_model(model) is None  # no background: None, never zeros
    bg = Background(np.array([0.3, 0.1, 0.2]), {"model_sha256": "abc", "n_snvs": 3})
    bg.save(default_path(model))
    assert default_path(model).name == "m.vxm.h5.background.h5"
    back = Background.for_model(model, model_sha256="abc")
    assert back is not None and back.provenance["n_snvs"] == 3
    np.testing.assert_array_equal(back.abs_delta, np.array([0.1, 0.2, 0.3], dtype=np.float32))
    with caplog.at_level(logging.WARNING):
        assert Background.for_model(model, model_sha256="other") is None
    assert "another model" in caplog.text
    with pytest.raises(BackgroundError, match="rebuild"):
        back.check_model("other")


def test_load_refuses_other_files(tmp_path):
    with pytest.raises(BackgroundError, match="does not exist"):
        Background.load(tmp_path / "nope.h5")
    (tmp_path / "x.h5").write_text("text")
    with pytest.raises(BackgroundError, match="not HDF5"):
        Background.load(tmp_path / "x.h5")
    import h5py

    with h5py.File(tmp_path / "y.h5", "w") as h5:
        h5["other"] = [1]
    with pytest.raises(BackgroundError, match="not a varxpress background"):
        Background.load(tmp_path / "y.h5")


# ------------------------------------------------------------------------------------------------ building


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from tests.toy import toy_genome, toy_model_file

    folder = tmp_path_factory.mktemp("bg")
    fa, tss = toy_genome(folder, {"chr1": CHR1, "chr2": CHR2}, GENES)
    model = toy_model_file(folder, UP, DOWN)
    return {"fasta": fa, "tss": tss, "model": model}


def _tss_list():
    return [TSS(g, n, c, p - 1, s) for g, n, c, p, s in GENES]


def _all_snv_deltas(model, genome, genes) -> np.ndarray:
    """Every SNV of every gene window, predicted by full forward passes of hand-built windows."""
    out = []
    for t in genes:
        seq = ref_window(genome, t, model.window_spec).seq
        alts = [seq[:i] + b + seq[i + 1:] for i, r in enumerate(seq) if r in "ACGT" for b in "ACGT" if b != r]
        preds = model.predict(one_hot([seq] + alts))
        out.append(preds[1:] - preds[0])
    return np.concatenate(out)


def test_exhaustive_background_equals_every_snv(world):
    from varxpress.models.network import ExpressionModel

    model = ExpressionModel.load(world["model"])
    genome = Genome(world["fasta"])
    genes = _tss_list()[:2]  # whole windows inside chr1
    bg, deltas = build_background(Predictor([model], genome), genes, n_snvs=0)
    brute = _all_snv_deltas(model, genome, genes)
    assert len(bg) == 2 * 3 * (UP + DOWN) == brute.size
    assert bg.provenance["exhaustive"] and bg.provenance["snv_space"] == brute.size
    np.testing.assert_allclose(np.sort(np.abs(brute)), bg.abs_delta, atol=1e-4)
    np.testing.assert_allclose(np.sort(deltas), np.sort(brute), atol=1e-4)
    assert np.abs(brute).max() > 0


def test_sample_is_seeded_subset_and_n_windows_are_handled(world):
    from varxpress.models.network import ExpressionModel

    model = ExpressionModel.load(world["model"])
    genome = Genome(world["fasta"])
    genes = _tss_list()
    full, _ = build_background(Predictor([model], genome), genes, n_snvs=0)
    # G3 (TSS 0-based 4, +): window [-16, 14) runs off chr2: its 16 N positions give no SNV
    assert full.provenance["snv_space"] == 3 * (2 * (UP + DOWN) + 14)
    a, da = build_background(Predictor([model], genome), genes, n_snvs=40, seed=5)
    b, db = build_background(Predictor([model], genome), genes, n_snvs=40, seed=5)
    c, _ = build_background(Predictor([model], genome), genes, n_snvs=40, seed=6)
    assert len(a) == 40 and not a.provenance["exhaustive"]
    np.testing.assert_array_equal(da, db)
    assert not np.array_equal(a.abs_delta, c.abs_delta)
    for v in a.abs_delta:  # every sampled value is one of the possible SNVs' values
        assert np.abs(full.abs_delta - v).min() < 1e-4
    strict, _ = build_background(Predictor([model], genome), genes, n_snvs=0, max_n_fraction=0.05)
    assert strict.provenance["n_genes"] == 2 and strict.provenance["n_genes_too_many_n"] == 1


def test_cli_writes_beside_the_model_with_provenance(world, tmp_path):
    model = tmp_path / "mine.vxm.h5"
    shutil.copyfile(world["model"], model)
    argv = ["background", "--fasta", str(world["fasta"]), "--tss", str(world["tss"]), "--model", str(model),
            "--n-snvs", "50", "--seed", "1", "--quiet"]
    assert main(argv) == 0
    from varxpress.models.network import ExpressionModel

    m = ExpressionModel.load(model)
    bg = Background.for_model(model, m.sha256)
    assert bg is not None and len(bg) == 50
    p = bg.provenance
    assert p["model_sha256"] == m.sha256 and p["genome_fai_md5"] == Genome(world["fasta"]).fingerprint()
    assert p["tss_file"] == "tss.tsv" and p["seed"] == 1 and p["n_snvs"] == 50 and p["n_genes"] == 2
    assert p["varxpress_command"].startswith("varxpress background")
    json.dumps(p)  # provenance is plain JSON
    assert main(argv + ["--out", str(tmp_path / "elsewhere.h5")]) == 0
    assert len(Background.load(tmp_path / "elsewhere.h5")) == 50


def test_the_background_shipped_beside_a_bundled_model_is_not_replaced_by_default(world, monkeypatch, caplog):
    from varxpress.models.registry import model_file

    shipped = default_path(model_file(None))
    before = shipped.read_bytes()

    def never(*args, **kwargs):
        raise AssertionError("a background was built")

    monkeypatch.setattr("varxpress.cli.background.build_background", never)
    argv = ["background", "--fasta", str(world["fasta"]), "--tss", str(world["tss"]), "--n-snvs", "5", "--quiet"]
    assert main(argv) == 2  # a usage error, before any work
    assert main(argv + ["--model", "human"]) == 2
    assert "ships with varxpress" in caplog.text and "--out" in caplog.text
    assert shipped.read_bytes() == before


# ------------------------------------------------------------------------------------------------ bundled


def test_bundled_background_belongs_to_the_bundled_model_and_reproduces_the_docs():
    """docs/interpretation.md's worked example: TERT C228T on the example genome, bundled model and background."""
    from pathlib import Path

    from varxpress.interpret.report import explain_variant
    from varxpress.scoring.resources import ResourceSpec, load_resources

    root = Path(__file__).resolve().parents[1]
    res = load_resources(ResourceSpec(fasta=str(root / "example_data" / "hg38_promoters.fa.gz"),
                                      tss=str(root / "example_data" / "tss.bed"), tss_offset=10000))
    bg = res.background  # the one beside the bundled model, found by itself
    assert bg is not None and bg.path == default_path(res.model_path)
    assert bg.model_sha256 == res.model.sha256, (
        "the bundled background was built for another model file; rebuild it with `varxpress background --fasta "
        "example_data/hg38_promoters.fa.gz --tss example_data/tss.bed --tss-offset 10000 --n-snvs 0 --out "
        "varxpress/data/xpresso_human_hg38.vxm.h5.background.h5` and update the numbers in docs/interpretation.md")
    assert default_path(res.model_path).stat().st_size < 1_000_000
    assert bg.provenance["exhaustive"] and len(bg) == bg.provenance["snv_space"] == 346_500
    (g,) = explain_variant(res, res.predictor(), "chr5", 1295113, "G", "A", flank=0).genes
    assert g.tss.gene_name == "TERT" and g.distance == -61
    assert round(g.delta, 4) == pytest.approx(0.0508, abs=1e-4)
    assert round(g.percentile, 1) == pytest.approx(99.7, abs=0.05)
