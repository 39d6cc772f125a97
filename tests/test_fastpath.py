"""Tests of varxpress.models.fastpath: local recomputation must equal a full forward pass of the Keras network."""

from __future__ import annotations

import os
import pickle

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from varxpress.errors import ModelError
from varxpress.models.fastpath import (
    GeneJob,
    LocalScorer,
    ScoringPool,
    score_gene_substitutions,
    score_genes,
    supports,
)
from varxpress.models.hparams import DEFAULT_HPARAMS
from varxpress.models.network import ExpressionModel
from varxpress.sequence.encode import decode, seq_codes

TOL = 1e-4  # on the network's output scale


def _model(hp: dict, bias_sd: float = 0.0, seed: int = 0) -> ExpressionModel:
    """An untrained model from the builder; optionally random biases so ReLUs are cut at varied thresholds."""
    model = ExpressionModel.from_hparams(hp, name="test")
    rng = np.random.default_rng(seed)
    for layer in model.keras_model.layers:
        ws = layer.get_weights()
        if type(layer).__name__ == "BatchNormalization":  # trained-looking statistics, negative scales included
            n = ws[0].shape
            layer.set_weights([rng.choice([-1, 1], n) * rng.uniform(0.5, 2, n), rng.normal(0, 0.5, n),
                               rng.normal(0, 0.5, n), rng.uniform(0.2, 3, n)])
        elif ws and bias_sd:
            layer.set_weights([w if w.ndim > 1 else rng.normal(0, bias_sd, w.shape).astype(np.float32) for w in ws])
    return model


def _onehot(codes: np.ndarray) -> np.ndarray:
    """codes 0-3 (ACGT) or -1 (N), shape (L,) -> (L, 4) float32."""
    x = np.zeros((codes.size, 4), dtype=np.float32)
    ok = codes >= 0
    x[np.flatnonzero(ok), codes[ok]] = 1.0
    return x


def _apply(ref: np.ndarray, edit_set) -> np.ndarray:
    alt = ref.copy()
    for pos, base in edit_set:
        alt[pos] = 0.0
        if base >= 0:
            alt[pos, base] = 1.0
    return alt


def _keras(model: ExpressionModel, windows: np.ndarray, features: np.ndarray | None) -> np.ndarray:
    return model.predict(windows, features)


@st.composite
def configurations(draw):
    length = draw(st.integers(40, 300))
    up = draw(st.integers(0, length - 1))
    conv = []
    for _ in range(draw(st.integers(1, 4))):
        conv.append({
            "filters": draw(st.integers(1, 8)),
            "kernel": draw(st.integers(1, 11)),
            "dilation": draw(st.integers(1, 4)),
            "pool": draw(st.sampled_from([1, 1, 2, 3, 4, 7])),
        })
    while np.prod([c["pool"] for c in conv]) > length:  # keep at least one position after the pooling
        max(conv, key=lambda c: c["pool"])["pool"] -= 1
    dense = [{"units": draw(st.integers(1, 8)), "dropout": 0.1} for _ in range(draw(st.integers(1, 2)))]
    hp = {"upstream": up, "downstream": length - up, "conv": conv, "dense": dense,
          "n_features": draw(st.integers(0, 3)), "seed": draw(st.integers(0, 1000))}
    if draw(st.booleans()):  # BatchNormalization (folded into the convolution) and conv dropout (identity)
        hp.update(batch_norm=True, conv_dropout=draw(st.sampled_from([0.0, 0.2])))
    if draw(st.integers(0, 3)) == 0:  # a global average instead of Flatten (read as Flatten with averaged rows)
        hp["global_pool"] = "avg"
    return hp, draw(st.sampled_from([0.0, 0.3])), draw(st.integers(0, 2**32 - 1))


def _edit_sets(rng: np.random.Generator, length: int) -> list[list[tuple[int, int]]]:
    """SNVs (window edges included), N bases, adjacent and spaced MNVs, an empty set."""
    sets: list[list[tuple[int, int]]] = [[(0, int(rng.integers(4)))], [(length - 1, int(rng.integers(4)))], []]
    for pos in rng.integers(0, length, 8):
        sets.append([(int(pos), int(rng.integers(-1, 4)))])
    sets.append([(1 % length, -1)])
    for _ in range(3):
        span = int(rng.integers(2, 6))
        start = int(rng.integers(0, max(1, length - span)))
        sets.append([(p, int(rng.integers(-1, 4))) for p in range(start, min(length, start + span))])
    spaced = sorted(set(int(p) for p in rng.integers(0, length, 3)))
    sets.append([(p, int(rng.integers(0, 4))) for p in spaced])
    sets.append([(length - 2 if length > 2 else 0, 0), (length - 1, 3)])
    return sets


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configurations())
def test_local_equals_full_keras_for_random_configurations(case):
    hp, bias_sd, seed = case
    model = _model(hp, bias_sd, seed)
    assert supports(model)
    scorer = LocalScorer(model)
    rng = np.random.default_rng(seed)
    length = hp["upstream"] + hp["downstream"]
    codes = rng.integers(0, 4, length)
    codes[rng.random(length) < 0.03] = -1  # some N in the reference too
    ref = _onehot(codes)
    features = rng.normal(size=hp["n_features"]) if hp["n_features"] else None

    cache = scorer.prepare(ref, features)
    ref_keras = _keras(model, ref[None], None if features is None else features[None])[0]
    assert abs(cache.pred - ref_keras) < TOL

    sets = _edit_sets(rng, length)
    local = scorer.predict_substitutions(cache, sets)
    windows = np.stack([_apply(ref, s) for s in sets])
    full = _keras(model, windows, None if features is None else np.repeat(features[None], len(sets), 0))
    assert np.abs(local - full).max() < TOL
    assert np.abs(scorer.predict_full(windows, features) - full).max() < TOL

    one_by_one = np.array([scorer.predict_substitutions(cache, [s])[0] for s in sets])
    np.testing.assert_allclose(local, one_by_one, rtol=0, atol=1e-6)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configurations())
def test_running_max_and_split_paths_equal_full_keras(case):
    """The small random batches above take the masked-window and whole-batch paths; force the others."""
    from unittest import mock

    from varxpress.models import local_scorer, stages

    hp, bias_sd, seed = case
    model = _model(hp, bias_sd, seed)
    scorer = LocalScorer(model)
    rng = np.random.default_rng(seed)
    length = hp["upstream"] + hp["downstream"]
    codes = rng.integers(0, 4, length)
    ref = _onehot(codes)
    features = rng.normal(size=hp["n_features"]) if hp["n_features"] else None
    cache = scorer.prepare(ref, features)
    sets = _edit_sets(rng, length)
    with mock.patch.object(stages, "_DIRECT_MAX", -1), mock.patch.object(local_scorer, "_SPLIT_MIN", 0):
        local = scorer.predict_substitutions(cache, sets)
    windows = np.stack([_apply(ref, s) for s in sets])
    full = _keras(model, windows, None if features is None else np.repeat(features[None], len(sets), 0))
    assert np.abs(local - full).max() < TOL


@pytest.mark.parametrize("n_queries", [3, 5, 40, 2000])
@pytest.mark.parametrize("direct_max", [-1, 1 << 30])
def test_unchanged_max_equals_masked_max(n_queries, direct_max):
    from unittest import mock

    from varxpress.models import stages

    rng = np.random.default_rng(n_queries)
    pool, cout, length = 7, 5, 7 * 60 + 3
    stage = stages.ConvStage(np.zeros((3, 2, cout), np.float32), np.zeros(cout, np.float32), 1, ["relu"], pool)
    z = rng.normal(size=(length, cout)).astype(np.float32)
    q = rng.integers(0, length // pool, n_queries)
    a = rng.integers(0, pool, n_queries)
    b = np.minimum(a + rng.integers(0, pool, n_queries), pool - 1)
    with mock.patch.object(stages, "_DIRECT_MAX", direct_max):
        got = stage.unchanged_max(z, q, a, b)
    for i in range(n_queries):
        keep = [q[i] * pool + t for t in range(pool) if not a[i] <= t <= b[i]]
        want = z[keep].max(axis=0) if keep else np.full(cout, -np.inf, np.float32)
        np.testing.assert_array_equal(got[i], want)


@pytest.fixture(scope="module")
def xpresso() -> ExpressionModel:
    """The Xpresso architecture (10.5 kb window), random weights and biases."""
    return _model(DEFAULT_HPARAMS, bias_sd=0.05, seed=7)


def test_xpresso_shaped_network_matches_keras(xpresso):
    scorer = LocalScorer(xpresso)
    rng = np.random.default_rng(1)
    length = xpresso.window_spec.length
    ref = _onehot(rng.integers(0, 4, length))
    features = rng.normal(size=xpresso.n_features)
    sets = _edit_sets(rng, length)
    ref_pred, alt = score_gene_substitutions(scorer, ref, features, sets)
    windows = np.stack([_apply(ref, s) for s in sets])
    full = xpresso.predict(windows, np.repeat(features[None], len(sets), 0))
    assert abs(ref_pred - xpresso.predict(ref[None], features[None])[0]) < TOL
    assert np.abs(alt - full).max() < TOL
    assert np.ptp(full) > 0  # the edits do move the prediction: the comparison is not vacuous


def test_many_snvs_in_one_gene_are_batched_like_single_ones(xpresso):
    scorer = LocalScorer(xpresso)
    rng = np.random.default_rng(2)
    length = xpresso.window_spec.length
    ref = _onehot(rng.integers(0, 4, length))
    cache = scorer.prepare(ref, None)  # None -> the model's default features
    sets = [[(int(p), int(b))] for p, b in zip(rng.integers(0, length, 400), rng.integers(-1, 4, 400))]
    batch = scorer.predict_substitutions(cache, sets)
    picks = rng.choice(len(sets), 12, replace=False)
    singles = np.array([scorer.predict_substitutions(cache, [sets[i]])[0] for i in picks])
    np.testing.assert_allclose(batch[picks], singles, rtol=0, atol=1e-6)
    full = xpresso.predict(np.stack([_apply(ref, sets[i]) for i in picks]))
    assert np.abs(batch[picks] - full).max() < TOL


def test_reference_base_and_empty_set_give_reference_prediction(xpresso):
    """A variant that changes nothing the network sees has the reference prediction itself, a delta of exactly 0
    (not 1e-16 from the head's products rounding by batch shape), among other variants of any batch, and an
    alternate window equal to the reference does among indels."""
    scorer = LocalScorer(xpresso)
    rng = np.random.default_rng(3)
    length = xpresso.window_spec.length
    codes = rng.integers(0, 4, length)
    cache = scorer.prepare(_onehot(codes), None)
    same = [[], [(100, int(codes[100]))], [(5, 0), (5, int(codes[5]))]]  # a later edit overrides an earlier one
    others = [[(int(p), int((codes[p] + 1) % 4))] for p in rng.integers(0, length, 37)]
    for batch in (same, same + others, others[:5] + same + others):
        out = scorer.predict_substitutions(cache, batch)
        at = [i for i, s in enumerate(batch) if any(s is t for t in same)]
        assert (out[at] == cache.pred).all() and cache.pred == scorer.ref_prediction(cache)
        assert np.ptp(out) > 0 or batch is same
    ref_seq = decode(_onehot(codes))
    moved = [ref_seq[3:] + "ACG", "T" + ref_seq[:-1], ref_seq]
    out = scorer.predict_windows(cache, moved, [-3, 1, 0])
    assert out[2] == cache.pred and out[0] != cache.pred


def test_bad_edits_are_refused(xpresso):
    scorer = LocalScorer(xpresso)
    cache = scorer.prepare(np.zeros((xpresso.window_spec.length, 4), np.float32), None)
    with pytest.raises(ValueError, match="out of the window"):
        scorer.predict_substitutions(cache, [[(xpresso.window_spec.length, 0)]])
    with pytest.raises(ValueError, match="base index"):
        scorer.predict_substitutions(cache, [[(3, 4)]])
    with pytest.raises(ModelError, match="shape"):
        scorer.prepare(np.zeros((10, 4), np.float32), None)


def _tiny_keras(layer):
    import keras

    inp = keras.Input((30, 4), name="promoter")
    x = keras.layers.Flatten()(layer(inp))
    return keras.Model(inp, keras.layers.Dense(1)(x))


@pytest.mark.parametrize("make", [
    lambda kl: kl.Conv1D(4, 3, padding="valid"),
    lambda kl: kl.Conv1D(4, 3, padding="same", strides=2),
    lambda kl: kl.AveragePooling1D(2),
    lambda kl: kl.Conv1D(4, 3, padding="same", activation="softmax"),
])
def test_unsupported_layers_are_reported(make):
    from keras import layers as kl

    net = _tiny_keras(make(kl))
    assert not supports(net)
    with pytest.raises(ModelError, match="full recomputation"):
        LocalScorer(net)


def test_raw_keras_model_needs_features():
    hp = {"upstream": 30, "downstream": 20, "conv": [{"filters": 3, "kernel": 5, "dilation": 1, "pool": 4}],
          "dense": [{"units": 3, "dropout": 0.0}], "n_features": 2}
    model = _model(hp, 0.2, 5)
    raw = LocalScorer(model.keras_model)  # a raw keras.Model has no default features
    with pytest.raises(ModelError, match="features"):
        raw.prepare(np.zeros((50, 4), np.float32), None)
    f = np.array([0.5, -1.0])
    ref = _onehot(np.random.default_rng(0).integers(0, 4, 50))
    assert abs(raw.prepare(ref, f).pred - model.predict(ref[None], f[None])[0]) < TOL


def test_score_genes_in_worker_processes_equals_in_process(xpresso):
    scorer = LocalScorer(xpresso)
    assert pickle.loads(pickle.dumps(scorer)).length == scorer.length
    rng = np.random.default_rng(4)
    length = xpresso.window_spec.length
    jobs = [
        GeneJob(g, _onehot(rng.integers(0, 4, length)), rng.normal(size=xpresso.n_features),
                [[(int(p), int(rng.integers(4)))] for p in rng.integers(0, length, 20)])
        for g in range(5)
    ]
    serial = list(score_genes(scorer, jobs, threads=1))
    parallel = list(score_genes(LocalScorer(xpresso, threads=2), iter(jobs), max_pending=2))
    assert [r.key for r in parallel] == list(range(5))
    for a, b in zip(serial, parallel):
        assert a.ref_pred == pytest.approx(b.ref_pred, abs=1e-9)
        np.testing.assert_allclose(a.alt_preds, b.alt_preds, rtol=0, atol=1e-6)
    with ScoringPool(scorer, threads=2) as pool:  # one pool, several calls
        again = [list(pool.map(jobs[:2])), list(pool.map(jobs[2:]))]
    assert [r.key for part in again for r in part] == list(range(5))
    np.testing.assert_allclose(again[1][0].alt_preds, serial[2].alt_preds, rtol=0, atol=1e-6)


def test_submitted_jobs_are_scored_as_mapped_ones_and_a_sequence_stands_for_its_one_hot(xpresso):
    from varxpress.sequence.encode import decode

    scorer = LocalScorer(xpresso)
    rng = np.random.default_rng(6)
    length = xpresso.window_spec.length
    jobs = [GeneJob(g, _onehot(rng.integers(0, 4, length)), None,
                    [[(int(p), int(rng.integers(4)))] for p in rng.integers(0, length, 5)]) for g in range(3)]
    as_text = [job._replace(ref_onehot=decode(job.ref_onehot)) for job in jobs]  # what `score` sends
    serial = list(score_genes(scorer, jobs, threads=1))
    with ScoringPool(scorer, threads=2) as pool:
        first, second = pool.submit(as_text[:2]), pool.submit(as_text[2:])  # both in flight at once
        got = second.results() + first.results()
        with pytest.raises(ValueError):  # a worker's error reaches the caller when it asks for the results
            pool.submit([jobs[0]._replace(ref_onehot="ACGT")]).results()
    assert [r.key for r in got] == [2, 0, 1]
    for r in got:
        assert r.ref_pred == pytest.approx(serial[r.key].ref_pred, abs=1e-9)
        np.testing.assert_allclose(r.alt_preds, serial[r.key].alt_preds, rtol=0, atol=1e-6)
    lazy = ScoringPool(scorer, threads=1).submit(as_text[:1])  # in this process: scored when asked
    np.testing.assert_allclose(lazy.results()[0].alt_preds, serial[0].alt_preds, rtol=0, atol=1e-6)


def test_a_signal_while_workers_start_waits_until_they_are_the_pools(xpresso):
    """SIGTERM (or Ctrl-C) in the middle of starting a worker once left it outside the pool's shutdown: it printed
    a traceback after `score` had ended. Jobs are now submitted with both signals held back: the handler runs once
    the submission is complete, and the handlers are the caller's again afterwards."""
    import signal

    from varxpress.lazy_keras import held_interrupts

    got: list[str] = []

    def handler(signum, frame):
        got.append(signal.Signals(signum).name)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        with held_interrupts():
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGTERM)
            got.append("submitted")
        assert got == ["submitted", "SIGTERM", "SIGINT"]
        assert signal.getsignal(signal.SIGTERM) is handler and signal.getsignal(signal.SIGINT) is handler
        rng = np.random.default_rng(7)
        job = GeneJob(0, _onehot(rng.integers(0, 4, xpresso.window_spec.length)), None, [[(5, 1)]])
        with ScoringPool(LocalScorer(xpresso), threads=2) as pool:  # submitting leaves the handlers as they were
            assert len(pool.submit([job, job._replace(key=1)]).results()) == 2
            assert signal.getsignal(signal.SIGTERM) is handler
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configurations(), st.sampled_from(["none", "none", "max", "avg"]))
def test_reading_from_hparams_and_weights_equals_reading_the_keras_network(case, global_pool):
    """A loaded model is read for the engines without Keras (parse_hparams); it must give the very arrays the Keras
    network gives (parse_network), and the file check (weight_shapes) must list the very weights Keras makes."""
    from varxpress.models.keras_stages import Unsupported, parse_hparams, parse_network
    from varxpress.models.network import weight_shapes

    hp, bias_sd, seed = case
    hp = dict(hp, global_pool=global_pool)
    model = _model(hp, bias_sd, seed)
    keras_weights = {layer.name: {v.name.split("/")[-1].split(":")[0]: tuple(v.shape) for v in layer.weights}
                     for layer in model.keras_model.layers if layer.weights}
    assert weight_shapes(model.hparams) == keras_weights
    assert list(weight_shapes(model.hparams)) == list(keras_weights)  # forward order
    if global_pool == "max":
        with pytest.raises(Unsupported, match="GlobalMaxPooling1D"):
            parse_hparams(model.hparams, model.numpy_weights())
        with pytest.raises(Unsupported, match="GlobalMaxPooling1D"):
            parse_network(model.keras_model)
        assert not supports(model)
        return
    ours = parse_hparams(model.hparams, model.numpy_weights())
    theirs = parse_network(model.keras_model)
    assert ours[2:] == theirs[2:]  # positions after pooling, features, input names
    for a, b in zip(ours[0], theirs[0], strict=True):
        assert (a.dilation, a.acts, a.pool) == (b.dilation, b.acts, b.pool)
        for x, y in ((a.kernel, b.kernel), (a.bias, b.bias), (a.kaug, b.kaug)):
            assert x.dtype == y.dtype and np.array_equal(x, y)
    ha, hb = ours[1], theirs[1]
    assert ha.first_acts == hb.first_acts and [k for k, _ in ha.ops] == [k for k, _ in hb.ops]
    for x, y in [(ha.w_flat, hb.w_flat), (ha.w_feat, hb.w_feat), (ha.bias, hb.bias)] + [
            (u, v) for (k, a), (_, b) in zip(ha.ops, hb.ops) if k == "dense" for u, v in zip(a, b)]:
        assert x.dtype == y.dtype and np.array_equal(x, y)
    assert [a for k, a in ha.ops if k == "act"] == [b for k, b in hb.ops if k == "act"]


def test_a_loaded_model_scores_without_building_its_network(tmp_path):
    """Loading checks the weights and keeps them as numpy; the engine reads them; Keras is built on first use only,
    and then predicts what the engine predicts."""
    hp = {"upstream": 40, "downstream": 30, "conv": [{"filters": 4, "kernel": 5, "pool": 3}, {"filters": 3, "kernel": 3}],
          "dense": [{"units": 5, "dropout": 0.1}], "n_features": 2, "batch_norm": True}
    saved = _model(hp, 0.3, 7)
    loaded = ExpressionModel.load(saved.save(tmp_path / "m.vxm.h5"))
    assert loaded._keras is None
    scorer = LocalScorer(loaded)
    assert loaded._keras is None, "the engine must not need the Keras network"
    rng = np.random.default_rng(0)
    ref = _onehot(rng.integers(0, 4, 70))
    cache = scorer.prepare(ref, [0.5, -1.0])
    assert abs(cache.pred - loaded.predict(ref[None], np.array([[0.5, -1.0]]))[0]) < TOL
    assert loaded._keras is not None and loaded._weights is None  # built once, then the only copy
    assert abs(LocalScorer(loaded).prepare(ref, [0.5, -1.0]).pred - cache.pred) < 1e-9


def test_score_with_a_supported_model_never_starts_tensorflow(tmp_path):
    """Scoring with the incremental engines needs numpy only: TensorFlow (seconds to import) is not loaded, nor
    pandas (half a second; only a features table needs it), so one patient's VCF is answered in about a second. The
    demo VCF with the bundled human model, in a fresh process."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    code = ("import sys; from varxpress.cli import main; "
            f"rc = main(['score', 'example_data/demo.vcf', '--fasta', 'example_data/hg38_promoters.fa.gz', "
            f"'--tss', 'example_data/tss.bed', '--tss-offset', '10000', '--out', {str(tmp_path / 'o.vcf')!r}, "
            "'--quiet']); print(rc, 'tensorflow' in sys.modules, 'keras' in sys.modules, 'pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=repo, check=True)
    assert out.stdout.split()[-4:] == ["0", "False", "False", "False"], out.stderr[-2000:]
    assert sum(1 for line in (tmp_path / "o.vcf").read_text().splitlines() if "VXP=" in line) > 0


@pytest.mark.parametrize("k, dilation", [(6, 1), (3, 4), (5, 2)])
def test_first_layer_by_kmer_table_equals_the_im2col_product(k, dilation):
    """A one-hot first layer is computed by looking each position's k-mer up in a table (N and the window edges
    included); anything else that is not exactly one-hot takes the im2col product. Both give the same sums."""
    from varxpress.models import stages

    rng = np.random.default_rng(k)
    stage = stages.ConvStage(rng.normal(size=(k, 4, 16)).astype(np.float32), rng.normal(size=16).astype(np.float32),
                             dilation, ["relu"], 3)
    x = np.stack([_onehot(np.where(rng.random(90) < 0.1, -1, rng.integers(0, 4, 90))) for _ in range(3)])
    by_table = stage.preact(x)
    assert stage._table is not None and stage._table.shape == (5**k, 16)
    plain = stages.ConvStage(stage.kernel, stage.bias, dilation, ["relu"], 3)
    soft = x.copy()
    soft[0, 5] = [0.5, 0.5, 0.0, 0.0]  # not one-hot: no table lookup for this batch
    by_product = plain.preact(soft)
    assert plain._table is not None  # built, but not used for the soft batch
    np.testing.assert_allclose(by_table[1:], by_product[1:], rtol=0, atol=1e-5)
    np.testing.assert_allclose(by_table[0, 5 + stage.right + 1 :], by_product[0, 5 + stage.right + 1 :], rtol=0, atol=1e-5)
    # the position the soft row reaches differs, as a convolution of the soft value should
    assert not np.allclose(by_table[0, 5], by_product[0, 5])
    assert pickle.loads(pickle.dumps(stage))._table is None  # worker processes rebuild it rather than receive it


@pytest.mark.parametrize("k, dilation", [(6, 1), (3, 4), (1, 1), (11, 1)])
def test_first_layer_at_some_positions_from_base_codes_equals_the_full_pass(k, dilation):
    """The indel engine recomputes a few first-layer positions of a window given as base codes: by k-mer where the
    stage has a table (k 6 and 3: the same lookups as the full pass), else from the one-hot rows of the stretch
    those positions read (k 1 and 11: no table), the window's ends padded as in the full pass."""
    from varxpress.models import stages

    rng = np.random.default_rng(k)
    stage = stages.ConvStage(rng.normal(size=(k, 4, 8)).astype(np.float32), rng.normal(size=8).astype(np.float32),
                             dilation, ["relu"], 3)
    codes = np.where(rng.random(120) < 0.1, -1, rng.integers(0, 4, 120))
    full = stage.preact(_onehot(codes)[None])[0]
    assert (stage._table is not None) == (k in (6, 3))
    seq = seq_codes(decode(_onehot(codes)))
    for rows in (np.arange(0, 4), np.array([2, 7, 8, 50]), np.arange(60, 75), np.arange(115, 120), np.array([119])):
        np.testing.assert_allclose(stage.preact_at_codes(seq, rows), full[rows], rtol=0, atol=1e-5)
        if stage._table is not None:  # the same table rows, bit for bit
            np.testing.assert_array_equal(stage.preact_at_codes(seq, rows), full[rows])


@pytest.mark.parametrize("k, dilation, cin", [(9, 1, 32), (4, 3, 16), (1, 1, 20)])
def test_wide_inputs_summed_by_tap_equal_the_im2col_product(k, dilation, cin):
    """A wide input's convolution is every tap's product summed at the positions it reaches (kcat), whole or at some
    positions only; it must equal the im2col product (the path of narrow inputs) to float32 rounding."""
    from unittest import mock

    from varxpress.models import stages

    rng = np.random.default_rng(cin)
    stage = stages.ConvStage(rng.normal(size=(k, cin, 6)).astype(np.float32), rng.normal(size=6).astype(np.float32),
                             dilation, ["relu"], 2)
    assert stage.by_taps
    x = rng.normal(size=(2, 70, cin)).astype(np.float32)
    by_taps = stage.preact(x)
    with mock.patch.object(stages, "_TAPS_MIN_CIN", 10**6):
        assert not stage.by_taps
        by_rows = stage.preact(x)
    # sums of k * cin products of unit normals (values up to ~30) in another order: float32 rounding is relative
    np.testing.assert_allclose(by_taps, by_rows, rtol=1e-5, atol=1e-5)
    rows = np.array([0, 1, 33, 34, 68, 69])  # both edges (zero padding) and the middle
    np.testing.assert_allclose(stage.preact_rows(x[1], rows), by_rows[1, rows], rtol=1e-5, atol=1e-5)
