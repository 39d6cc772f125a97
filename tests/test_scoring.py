import math

import numpy as np
import pytest

from varxpress.scoring import GeneScore, delta, log2_fold_change, log10_scale, quality_flags, strongest
from varxpress.windows import Window


def test_delta_is_alt_minus_ref_elementwise():
    ref = np.array([1.0, 2.0, -0.5])
    alt = np.array([1.5, 1.0, -0.5])
    np.testing.assert_allclose(delta(ref, alt), [0.5, -1.0, 0.0])


@pytest.mark.parametrize("scale,sd,factor", [("log10", None, 1.0), ("standardized_log10", 0.8, 0.8),
                                             ("standardized_log10", None, None), ("unknown", 1.0, None)])
def test_log10_scale(scale, sd, factor):
    assert log10_scale(scale, sd) == factor


def test_log2_fold_change_of_one_log10_unit_is_log2_10():
    assert log2_fold_change(1.0, "log10", None) == pytest.approx(math.log2(10))
    # standardised output: one output unit is sd log10 units
    assert log2_fold_change(0.5, "standardized_log10", 2.0) == pytest.approx(math.log2(10))
    assert log2_fold_change(0.5, "something_else", 2.0) is None


def _score(alt_index, d):
    return GeneScore(0, alt_index, "A", f"G{alt_index}{d}", "g", "+", 1, 0, 0.0, d, d, None, ())


def test_strongest_picks_largest_absolute_delta_first_on_ties():
    scores = [_score(0, 0.1), _score(0, -0.3), _score(1, 0.3)]
    assert strongest(scores) is scores[1]
    assert strongest([]) is None


def test_window_n_fraction_counts_unknown_bases_and_padding():
    assert Window("ACGTNNNNNN", "c", 0, 10, "+", False).n_fraction == 0.6
    assert Window("ACGT", "c", 0, 4, "-", False).n_fraction == 0.0


@pytest.mark.parametrize("off, nfrac, pct, bg_max, flags", [
    (False, 0.0, 99.0, 0.05, ()),
    (False, 0.05, 99.0, 0.05, ()),  # at the threshold: not N-rich
    (False, 0.06, None, None, ("n_rich",)),  # no percentile: nothing to mismatch
    (False, 0.06, 50.0, None, ("n_rich", "background_mismatch")),  # a background that does not say: 5 %
    (False, 0.06, 50.0, 1.0, ("n_rich",)),  # a background built with every window
    (True, 0.5, 50.0, 0.05, ("off_contig", "n_rich", "background_mismatch")),
])
def test_quality_flags(off, nfrac, pct, bg_max, flags):
    assert quality_flags(off, nfrac, pct, bg_max) == flags
