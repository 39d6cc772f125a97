"""Tests of varxpress.models.shiftpath: indel windows scored from the shifted reference cache must equal full recomputation."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from tests.test_fastpath import TOL, _keras, _model, _onehot, configurations
from varxpress.errors import ModelError
from varxpress.models.fastpath import LocalScorer
from varxpress.models.hparams import DEFAULT_HPARAMS
from varxpress.models.network import ExpressionModel
from varxpress.models.shiftpath import stretches
from varxpress.sequence.encode import decode

MARGIN = 120  # genome bases on each side of the reference window, pulled in by shifts


def _indel_windows(rng: np.random.Generator, genome: np.ndarray, length: int, up: int):
    """Alternate windows of insertions and deletions cut from the alternate haplotype, both anchorings.

    ``genome`` codes; the reference window is ``genome[MARGIN : MARGIN + length]``. Returns (windows (n, L, 4),
    shifts) with indels at both window edges, at the TSS (index ``up``), just outside the window, and longer than
    the receptive field and than the window.
    """
    sites = [MARGIN, MARGIN + 1, MARGIN + length - 1, MARGIN + length, MARGIN - 3, MARGIN + up,
             MARGIN + up - 1, MARGIN + up + 1, *(MARGIN + rng.integers(0, length, 4))]
    sizes = [1, 2, 5, 17, 40, length + 3]
    windows, shifts = [], []
    for site in sites:
        site = int(site)
        for size in rng.choice(sizes, 3, replace=False):
            size = int(size)
            if rng.random() < 0.5:  # insertion after the anchor base at ``site`` (some inserted N)
                ins = rng.integers(-1, 4, size)
                hap = np.concatenate([genome[: site + 1], ins, genome[site + 1 :]])
                delta = size
            else:  # deletion of ``size`` bases after the anchor
                hap = np.concatenate([genome[: site + 1], genome[site + 1 + size :]])
                delta = -size
            for start in (MARGIN, MARGIN + delta):  # the right side shifted, or the left side (TSS kept)
                if 0 <= start and start + length <= hap.size:
                    windows.append(_onehot(hap[start : start + length]))
                    shifts.append(delta)
    windows.append(_onehot(genome[MARGIN : MARGIN + length]))  # the reference itself
    shifts.append(0)
    return np.stack(windows), shifts


def scorer_length(hp: dict) -> int:
    return hp["upstream"] + hp["downstream"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configurations())
def test_indel_windows_equal_full_recomputation_for_random_configurations(case):
    hp, bias_sd, seed = case
    model = _model(hp, bias_sd, seed)
    scorer, rng, length = LocalScorer(model), np.random.default_rng(seed), scorer_length(hp)
    genome = rng.integers(0, 4, length + 2 * MARGIN + 200)
    genome[rng.random(genome.size) < 0.03] = -1  # some N in the reference
    features = rng.normal(size=hp["n_features"]) if hp["n_features"] else None
    cache = scorer.prepare(_onehot(genome[MARGIN : MARGIN + length]), features)

    alts, shifts = _indel_windows(rng, genome, length, hp["upstream"])
    fast = scorer.predict_windows(cache, alts, shifts)
    full = scorer.predict_full(alts, features)
    assert np.abs(fast - full).max() < 1e-5
    keras = _keras(model, alts, None if features is None else np.repeat(features[None], len(alts), 0))
    assert np.abs(fast - keras).max() < TOL
    # a wrong shift hint costs speed, never correctness; a batch equals one by one. Both only reorder float32
    # sums (a folded batch normalisation scales them up), so they are held to the engine's 1e-5, not to 1e-6
    np.testing.assert_allclose(scorer.predict_windows(cache, alts, [7] * len(alts)), fast, rtol=0, atol=1e-5)
    one = np.array([scorer.predict_windows(cache, alts[i : i + 1], shifts[i : i + 1])[0] for i in range(len(alts))])
    np.testing.assert_allclose(one, fast, rtol=0, atol=1e-5)
    # the windows' sequences (as score's workers receive them) give the same numbers as their one-hot rows
    np.testing.assert_array_equal(scorer.predict_windows(cache, decode(alts), shifts), fast)


def test_stretches_find_both_sides_of_an_indel():
    rng = np.random.default_rng(1)
    genome = rng.integers(0, 4, 400)
    ref = _onehot(genome[100:300])
    alt = _onehot(np.concatenate([genome[100:150], genome[155:305]]))  # 5 bp deleted after index 49
    found = sorted(stretches(ref, alt, -5))
    assert found[:2] == [(0, 50, 0), (50, 195, 5)]  # then alt copies ref moved 5 to the right, to ref's end
    for lo, hi, s in found:
        assert (alt[lo:hi] == ref[lo + s : hi + s]).all()


@pytest.fixture(scope="module")
def xpresso() -> ExpressionModel:
    return ExpressionModel.from_hparams(DEFAULT_HPARAMS, name="xpresso-shaped")


def test_xpresso_shaped_indels_match_full_recomputation(xpresso):
    scorer = LocalScorer(xpresso)
    rng = np.random.default_rng(3)
    length = scorer.length
    up = DEFAULT_HPARAMS["upstream"]
    genome = rng.integers(0, 4, length + 2 * MARGIN + 200)
    cache = scorer.prepare(_onehot(genome[MARGIN : MARGIN + length]))
    alts, shifts = _indel_windows(rng, genome, length, up)
    alts, shifts = alts[::4], shifts[::4]  # enough variety, a quarter of the Keras time
    fast = scorer.predict_windows(cache, alts, shifts)
    full = scorer.predict_full(alts)
    assert np.abs(fast - full).max() < 1e-5
    assert np.abs(fast - _keras(xpresso, alts, None)).max() < TOL
    assert len(cache.shifted) > 1, "shifted stretches should reuse the phase-pooled reference"


def test_soft_rows_are_compared_as_rows_not_as_base_codes(xpresso):
    """A window whose rows are not exactly one-hot (e.g. probabilities) must not be taken for the bases its codes
    would name: rows reading 0.6 A + 0.2 C sum to the code of A, placed where the moved reference has an A."""
    scorer = LocalScorer(xpresso)
    rng = np.random.default_rng(8)
    length = scorer.length
    genome = rng.integers(0, 4, length + 2 * MARGIN)
    cache = scorer.prepare(_onehot(genome[MARGIN : MARGIN + length]))
    alt = _onehot(np.concatenate([genome[MARGIN : MARGIN + 3000], genome[MARGIN + 3005 : MARGIN + length + 5]]))
    soft = [j for j in range(6000, 6100) if genome[MARGIN + j + 5] == 0]
    alt[soft] = [0.6, 0.2, 0.0, 0.0]
    full = scorer.predict_full(alt[None])
    assert abs(scorer.predict_windows(cache, alt[None], [-5])[0] - full[0]) < 1e-5
    soft_ref = _onehot(genome[MARGIN : MARGIN + length])
    soft_ref[[7000, 7001]] = [0.25, 0.25, 0.25, 0.25]  # a soft reference, an exact alternate window
    cache = scorer.prepare(soft_ref)
    alt = _onehot(genome[MARGIN + 2 : MARGIN + length + 2])
    assert abs(scorer.predict_windows(cache, alt[None], [2])[0] - scorer.predict_full(alt[None])[0]) < 1e-5


def test_window_sequences_of_another_length_are_refused(xpresso):
    scorer = LocalScorer(xpresso)
    cache = scorer.prepare(np.zeros((scorer.length, 4), dtype=np.float32))
    with pytest.raises(ModelError, match=f"{scorer.length - 1} bases, the network reads {scorer.length}"):
        scorer.predict_windows(cache, ["A" * scorer.length, "A" * (scorer.length - 1)], [0, -1])


def test_gene_jobs_with_indels_score_the_same_in_workers(xpresso):
    """A job's indel windows (sequences) come back beside its substitutions, in order, from worker processes too."""
    from varxpress.sequence.encode import ALPHABET
    from varxpress.models.fastpath import GeneJob, ScoringPool

    scorer = LocalScorer(xpresso)
    rng = np.random.default_rng(5)
    length = scorer.length
    genome = rng.integers(0, 4, length + 2 * MARGIN + 200)
    ref = _onehot(genome[MARGIN : MARGIN + length])
    seq = lambda codes: "".join(ALPHABET[c] if c >= 0 else "N" for c in codes)  # noqa: E731
    ins = np.concatenate([genome[MARGIN : MARGIN + 500], [0, 1, 2], genome[MARGIN + 500 : MARGIN + length - 3]])
    dele = np.concatenate([genome[MARGIN + 4 : MARGIN + 900], genome[MARGIN + 904 : MARGIN + length + 8]])
    windows = [(seq(ins), 3), (seq(dele), -4)]
    jobs = [GeneJob(k, ref, None, [[(10, 2)]], windows[k:]) for k in range(2)]
    expected = scorer.predict_full(np.stack([_onehot(ins), _onehot(dele)]))
    with ScoringPool(scorer, 2) as pool:
        results = list(pool.map(jobs))
    assert [r.key for r in results] == [0, 1]
    np.testing.assert_allclose(results[0].window_preds, expected, rtol=0, atol=1e-5)
    np.testing.assert_allclose(results[1].window_preds, expected[1:], rtol=0, atol=1e-5)
    assert results[0].alt_preds.shape == (1,)
