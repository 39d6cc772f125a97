"""Ensembles: statistics against the members' own outputs, export and load."""

from __future__ import annotations

import json
import random
import shutil

import numpy as np
import pytest

from varxpress.sequence.encode import one_hot
from varxpress.models.ensemble import MANIFEST, EnsembleModel, ensemble_stats, export_ensemble
from varxpress.errors import ModelError

UP, DOWN = 20, 10


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    from tests.toy import toy_model_file
    from varxpress.models.network import ExpressionModel

    paths = [toy_model_file(tmp_path_factory.mktemp(f"m{seed}"), UP, DOWN, seed=seed) for seed in (0, 1, 2)]
    return paths, [ExpressionModel.load(p) for p in paths]


def test_stats_against_per_row_computation():
    rng = np.random.default_rng(0)
    ref, alt = rng.normal(size=(50, 4)), rng.normal(size=(50, 4))
    st = ensemble_stats(ref, alt)
    for i in range(50):
        d = [alt[i, j] - ref[i, j] for j in range(4)]
        mean = sum(d) / 4
        sd = (sum((x - mean) ** 2 for x in d) / 3) ** 0.5
        assert st.mean_delta[i] == pytest.approx(mean)
        assert st.sd_delta[i] == pytest.approx(sd)
        assert st.sign_agreement[i] == pytest.approx(sum(np.sign(x) == np.sign(mean) for x in d) / 4)
        assert st.all_agree[i] == (all(x > 0 for x in d) or all(x < 0 for x in d))
        assert st.ref_mean[i] == pytest.approx(ref[i].mean()) and st.alt_mean[i] == pytest.approx(alt[i].mean())


def test_stats_literal_cases():
    ref = np.zeros((4, 3))
    alt = np.array([[1.0, 2.0, -1.0], [-1.0, -2.0, -3.0], [0.0, 0.0, 0.0], [1.0, 0.0, 1.0]])
    st = ensemble_stats(ref, alt)
    np.testing.assert_allclose(st.mean_delta, [2 / 3, -2.0, 0.0, 2 / 3])
    np.testing.assert_allclose(st.sign_agreement, [2 / 3, 1.0, 1.0, 2 / 3])
    assert st.all_agree.tolist() == [False, True, False, False]  # zeros agree with nothing strictly
    np.testing.assert_allclose(st.sd_delta[1], 1.0)
    one = ensemble_stats(np.zeros((2, 1)), np.array([[0.5], [-0.5]]))
    assert np.isnan(one.sd_delta).all() and one.all_agree.all() and (one.sign_agreement == 1).all()
    with pytest.raises(ValueError, match=r"\(n, k\)"):
        ensemble_stats(np.zeros((2, 3)), np.zeros((2, 2)))


def test_predict_stacks_the_members_own_predictions(members):
    _, models = members
    ens = EnsembleModel(models)
    rng = random.Random(1)
    seqs = ["".join(rng.choice("ACGT") for _ in range(UP + DOWN)) for _ in range(5)]
    X = one_hot(seqs)
    P = ens.predict(X)
    assert P.shape == (5, 3)
    for j, m in enumerate(models):
        np.testing.assert_allclose(P[:, j], m.predict(X), atol=1e-6)
    assert np.ptp(P, axis=1).max() > 0  # the seeds give different networks
    # an SNV: stats from the ensemble equal those from each member run alone
    alt = seqs[0][:7] + ("A" if seqs[0][7] != "A" else "C") + seqs[0][8:]
    refs = np.array([[m.predict(one_hot([seqs[0]]))[0] for m in models]])
    alts = np.array([[m.predict(one_hot([alt]))[0] for m in models]])
    both = ens.predict(one_hot([seqs[0], alt]))
    a, b = ensemble_stats(refs, alts), ensemble_stats(both[:1], both[1:])
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, atol=1e-6)


def test_export_and_load_round_trip(members, tmp_path):
    paths, models = members
    manifest = export_ensemble(models, tmp_path / "ens", source={"kind": "cv", "folds": 3})
    assert manifest.name == MANIFEST
    spec = json.loads(manifest.read_text())
    assert [e["file"] for e in spec["members"]] == ["member_01.vxm.h5", "member_02.vxm.h5", "member_03.vxm.h5"]
    for target in (tmp_path / "ens", manifest):
        ens = EnsembleModel.load(target)
        assert len(ens) == 3 and ens.source == {"kind": "cv", "folds": 3}
        assert [m.sha256 for m in ens.members] == [e["sha256"] for e in spec["members"]]
    X = one_hot(["ACGT" * 7 + "AC"])
    np.testing.assert_allclose(EnsembleModel.load(manifest).predict(X)[0],
                               [m.predict(X)[0] for m in models], atol=1e-6)
    # from paths (copied), and a plain folder without manifest
    m2 = export_ensemble(paths, tmp_path / "ens2", names=["a.vxm.h5", "b.vxm.h5", "c.vxm.h5"])
    (m2).unlink()
    ens = EnsembleModel.load(tmp_path / "ens2")
    assert [m.path.name for m in ens.members] == ["a.vxm.h5", "b.vxm.h5", "c.vxm.h5"]
    assert ens.sha256 == EnsembleModel(models).sha256  # same files, same order


def test_load_errors(members, tmp_path):
    paths, models = members
    with pytest.raises(ModelError, match="does not exist"):
        EnsembleModel.load(tmp_path / "none")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="neither"):
        EnsembleModel.load(tmp_path / "empty")
    manifest = export_ensemble(paths[:2], tmp_path / "e")
    shutil.copyfile(paths[2], tmp_path / "e" / "member_02.vxm.h5")  # replaced behind the manifest's back
    with pytest.raises(ModelError, match="replaced"):
        EnsembleModel.load(manifest)
    (tmp_path / "bad.json").write_text('{"members": []}')
    with pytest.raises(ModelError, match="not a varxpress ensemble"):
        EnsembleModel.load(tmp_path / "bad.json")


def test_members_must_share_window_and_features(members, tmp_path):
    from tests.toy import toy_model_file
    from varxpress.models.network import ExpressionModel

    _, models = members
    other = ExpressionModel.load(toy_model_file(tmp_path, UP + 2, DOWN))
    with pytest.raises(ModelError, match="window"):
        EnsembleModel([models[0], other])
    (tmp_path / "f").mkdir()
    feat = ExpressionModel.load(toy_model_file(tmp_path / "f", UP, DOWN, n_features=2))
    with pytest.raises(ModelError, match="features"):
        EnsembleModel([models[0], feat])
    with pytest.raises(ModelError, match="needs at least one member"):
        EnsembleModel([])
