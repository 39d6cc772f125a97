"""One-hot encoding and reverse complement."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from varxpress.sequence.encode import ALPHABET, decode, one_hot, reverse_complement

IUPAC = "ACGTNRYSWKMBDHVacgtnryswkmbdhv"


def test_one_hot_literal():
    X = one_hot("ACGTN")
    assert X.dtype == np.float32 and X.shape == (5, 4)
    expected = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]], dtype=np.float32)
    np.testing.assert_array_equal(X, expected)
    assert ALPHABET == "ACGT"


def test_lowercase_and_iupac():
    np.testing.assert_array_equal(one_hot("acgt"), one_hot("ACGT"))
    assert not one_hot("RYSWKMBDHVN-.").any()


def test_batch_shape_and_values():
    X = one_hot(["AC", "GT", "NA"])
    assert X.shape == (3, 2, 4)
    np.testing.assert_array_equal(X[1], one_hot("GT"))
    np.testing.assert_array_equal(X[2, 0], np.zeros(4))
    assert one_hot([]).shape == (0, 0, 4)


def test_batch_unequal_lengths_rejected():
    with pytest.raises(ValueError, match="sequence 1 has length 3"):
        one_hot(["AC", "ACG"])


def test_non_ascii_rejected():
    with pytest.raises(ValueError, match="non-ASCII"):
        one_hot("ACé")


def test_reverse_complement_literal():
    assert reverse_complement("AACGTN") == "NACGTT"
    assert reverse_complement("acgRYKMBDHVSW") == "WSBDHVKMRYcgt"
    assert reverse_complement("") == ""


def test_decode_round_trip():
    assert decode(one_hot("ACGTNA")) == "ACGTNA"
    assert decode(one_hot(["AN", "GT"])) == ["AN", "GT"]


@given(st.text(alphabet=IUPAC, max_size=200))
def test_rc_involution(seq):
    assert reverse_complement(reverse_complement(seq)) == seq
    assert len(reverse_complement(seq)) == len(seq)


@given(st.text(alphabet=IUPAC, max_size=200))
def test_rows_sum_to_one_except_ambiguous(seq):
    X = one_hot(seq)
    sums = X.sum(axis=1)
    is_base = np.array([c in "ACGTacgt" for c in seq], dtype=bool)
    np.testing.assert_array_equal(sums, is_base.astype(np.float32))


@given(st.text(alphabet="ACGTN", max_size=100))
def test_one_hot_of_rc_is_flipped_one_hot(seq):
    # complementing A<->T, C<->G reverses the column order ACGT -> TGCA
    np.testing.assert_array_equal(one_hot(reverse_complement(seq)), one_hot(seq)[::-1, ::-1])
