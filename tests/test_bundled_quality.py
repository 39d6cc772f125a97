"""Every bundled network that varxpress trained beats its simple baselines on held-out data, measured again here.

The guard behind the registry: a network trained here may be bundled only with an evaluation in this file, which
rebuilds its prepared set from the real data (``../shared/data``), checks that the held-out split is the one the
model's metadata says it never trained on, and runs ``evaluate``'s baseline verdict (training mean and the k-mer
ridge choosing its k, paired bootstrap) on it. A newly bundled trained model without an entry in ``REBUILD`` fails
the first test. The published Xpresso networks, converted rather than trained here, are checked against their
published predictions instead (tests/test_published.py, tests/test_xpresso.py).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.realdata import DATA, need
from varxpress.learning.evaluation import evaluate
from varxpress.learning.prepared import PreparedSet
from varxpress.models import registry
from varxpress.models.network import ExpressionModel

ROOT = Path(__file__).resolve().parents[1]
#: the fields of a prepared set's fingerprint that fix its split (paths and the file's own hash differ per build)
SPLIT_FIELDS = ("kind", "upstream", "downstream", "split_method", "test_chroms", "valid_chroms", "n", "genome_build")


def _yeast_set(folder: Path) -> Path:
    """The yeast recipe's prepared set (recipes/yeast/recipe.py inputs + prepare, a few seconds)."""
    need(DATA / "yeast" / "genome", DATA / "yeast" / "tss", DATA / "yeast" / "labels")
    spec = importlib.util.spec_from_file_location("yeast_recipe", ROOT / "recipes" / "yeast" / "recipe.py")
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    for step in ("inputs", "prepare"):
        assert recipe.main([step, "--out", str(folder)]) == 0
    return folder / "yeast.vxd.h5"


#: bundled name -> how to rebuild the prepared set it was trained and judged on
REBUILD = {"yeast": _yeast_set}


def _trained_here(entry: registry.BundledModel) -> bool:
    return "trained_by" in ExpressionModel.load(entry.model_path).metadata.source


def test_every_bundled_network_trained_here_has_its_held_out_evaluation() -> None:
    """Each carries a passing verdict in its own metadata (``train``'s, or ``evaluate --write-model``'s for a merged
    network) and has an entry here that measures it again."""
    trained = {name for name, entry in registry.BUNDLED.items() if entry.kind == "model" and _trained_here(entry)}
    assert trained, "no trained network is bundled: this guard would check nothing"
    missing = trained - set(REBUILD)
    assert not missing, f"bundled networks trained here without a held-out evaluation in this file: {missing}"
    for name in sorted(trained):
        metrics = ExpressionModel.load(registry.BUNDLED[name].model_path).metadata.metrics
        assert metrics.get("beats_baselines") is True and metrics.get("guard_split") == "test", name


@pytest.mark.realdata
@pytest.mark.parametrize("name", sorted(REBUILD))
def test_a_bundled_trained_network_beats_its_baselines_on_held_out_data(name, tmp_path) -> None:
    model = ExpressionModel.load(registry.BUNDLED[name].model_path)
    dataset = REBUILD[name](tmp_path)
    with PreparedSet(dataset) as pset:
        rebuilt = pset.fingerprint()
        trained_on = model.metadata.training_data
        for field in SPLIT_FIELDS:  # the held-out split is the one the model never trained on
            assert rebuilt[field] == trained_on[field], field
        assert rebuilt["labels"]["sha256"] == trained_on["labels"]["sha256"]
        assert rebuilt["genome"]["fingerprint"] == trained_on["genome"]["fingerprint"]
        result = evaluate(model, pset, "test", n_boot=1000)
    guard = result.guard
    assert guard["beats_baselines"], f"{name}: {guard['verdict']} ({'; '.join(guard['reasons'])})"
    table = result.table.set_index("predictor")
    assert 1 <= int(table.loc["kmer_ridge", "kmer_k"]) <= 6 and guard["paired"]["kmer_ridge"]["r2_diff_ci"][0] > 0
    recorded = model.metadata.metrics  # what the file says of itself is what was measured here
    assert recorded["model"]["test"]["r2"] == pytest.approx(table.loc["model", "r2"], abs=1e-6)
    assert recorded["baselines"]["kmer_ridge"]["test"]["r2"] == pytest.approx(table.loc["kmer_ridge", "r2"], abs=1e-6)
