"""One-hot encoding and reverse complement."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from varxpress.sequence.encode import ALPHABET, CODE_ROWS, decode, one_hot, onehot_codes, reverse_complement, seq_codes

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


@given(st.text(alphabet=IUPAC, max_size=200))
def test_base_codes_stand_for_one_hot_rows(seq):
    """seq_codes and onehot_codes give the same codes, and CODE_ROWS turns them back into one_hot's rows."""
    codes = seq_codes(seq)
    assert codes.dtype == np.int8 and codes.shape == (len(seq),)
    np.testing.assert_array_equal(np.take(CODE_ROWS, codes, axis=0), one_hot(seq))
    np.testing.assert_array_equal(onehot_codes(one_hot(seq)), codes)


def test_base_codes_literal_and_soft_rows():
    np.testing.assert_array_equal(seq_codes("ACGTNacgtRn"), [1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 0])
    soft = one_hot("ACGT")
    soft[1] = [0.6, 0.2, 0.0, 0.0]  # its code would read as A (0.6 + 2 * 0.2 = 1): not a base, no code
    assert onehot_codes(soft) is None
    soft[1] = [0.0, 0.0, 0.0, -1.0]
    assert onehot_codes(soft) is None
