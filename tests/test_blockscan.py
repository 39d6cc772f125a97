"""The block-wise pre-scan (varxpress.io.blockscan) against the line-by-line one it stands in for: it may send a
clean block to the line-by-line checks, but never passes a block those checks refuse, and collects the same
undeclared names."""

from __future__ import annotations

import gzip
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from varxpress.errors import VcfError
from varxpress.io.blockscan import FLOAT, INT, check_block
from varxpress.io.variants import _scan_records, scan_vcf_text

COLUMNS = 10  # 8 fixed columns, FORMAT and one sample
NUMERIC = {b"DP": INT, b"AF": FLOAT}
HEADER = ("##fileformat=VCFv4.2\n##contig=<ID=chr1,length=1000>\n"
          '##INFO=<ID=DP,Number=1,Type=Integer,Description="d">\n##INFO=<ID=AF,Number=A,Type=Float,Description="f">\n'
          '##FORMAT=<ID=GT,Number=1,Type=String,Description="g">\n'
          "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\n")


def _declared() -> dict[bytes, set[bytes]]:
    return {b"contig": {b"chr1"}, b"INFO": {b"DP", b"AF"}, b"FORMAT": {b"GT"}, b"FILTER": {b"PASS"}}


def _used() -> dict[bytes, set[bytes]]:
    return {k: set() for k in (b"contig", b"INFO", b"FORMAT", b"FLAG", b"FILTER")}


GOOD = {  # values the line-by-line scan accepts, column by column
    0: ["chr1", "chr2"], 1: ["100", "0", "12345678901"], 2: [".", "rs1"], 3: ["A", "ACG"], 4: ["G", "T,C", "<DEL>"],
    5: [".", "50", "50.5", ".5", "5.", "1e-3", "-inf", "NaN", "+7"], 6: [".", "PASS", "q10", "PASS;q10"],
    7: [".", "DP=5", "DP=5;AF=0.1", "AF=.,1E5", "AF=inf", "DP=+3,-2", "FLAGX", "NEWKEY=v=w", "DPX=abc",
        "AF=0.1;SOMATIC", ".;DP=2", "DP"],
    8: ["GT", "GT:AD", "."], 9: ["0/1", "1|1"],
}
BAD = {  # and values it refuses
    0: ["", "#chr1"], 1: ["-5", "1e3", "1x", ""], 2: [""], 5: ["1..2", "x", "..", "", "1e", "1.2.3", "e5"],
    7: ["DP=", "DP=5.5", "DP=1,,2", "AF=1e", "DP=x;AF=1", "AF=1..2", "DP=5;DP=x", ""], 8: [""], 9: [""],
}

good_line = st.tuples(*[st.sampled_from(GOOD[k]) for k in range(COLUMNS)]).map(list)
bad_line = st.tuples(good_line, st.sampled_from(sorted(BAD))).flatmap(
    lambda lk: st.sampled_from(BAD[lk[1]]).map(lambda v: lk[0][:lk[1]] + [v] + lk[0][lk[1] + 1:]))
line = st.one_of(good_line, good_line, good_line, bad_line).map(lambda f: "\t".join(f))
odd = st.sampled_from(["", "\t", "#x", "a\tb", "chr1 100 . A G . . . GT 0/1", "\r"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(line, line, line, line, odd), min_size=1, max_size=8), st.booleans())
def test_a_block_passes_only_when_every_line_passes(lines, crlf):
    block = "".join(l + ("\r\n" if crlf else "\n") for l in lines).encode()
    used_fast, used_slow = _used(), _used()
    fast = check_block(block, COLUMNS, {k: v is INT for k, v in NUMERIC.items()}, _declared(), used_fast)
    try:
        slow = _scan_records("x.vcf", block.split(b"\n")[:-1], 0, COLUMNS, NUMERIC, _declared(), used_slow)
    except VcfError:
        slow = None
    if fast is not None:
        assert fast == slow == len(lines)
        assert used_fast == used_slow


@pytest.mark.parametrize("column, value", [(k, v) for k, values in sorted(BAD.items()) for v in values])
def test_each_refused_value_sends_its_block_to_the_line_by_line_checks(column, value):
    fields = [GOOD[k][0] for k in range(COLUMNS)]
    good = "\t".join(fields) + "\n"
    fields[column] = value
    block = (good + "\t".join(fields) + "\n").encode()
    assert check_block(block, COLUMNS, {b"DP": True, b"AF": False}, _declared(), _used()) is None
    with pytest.raises(VcfError, match="x.vcf:2: "):
        _scan_records("x.vcf", block.split(b"\n")[:-1], 0, COLUMNS, NUMERIC, _declared(), _used())


def test_clean_blocks_take_the_fast_way_and_collect_undeclared_names():
    block = ("chr1\t100\t.\tA\tG\t50.5\tPASS\tDP=5;AF=.,1E5;SOMATIC\tGT:AD\t0/1\n"
             "chr2\t7\trs1\tACG\tT,C\t1e-3\tq10;lowqual\tNEWKEY=v=w\tGT\t1|1\n"
             "chr1\t8\t.\tA\t<DEL>\t.\t.\t.\t.\t0/1\n").encode()
    used = _used()
    assert check_block(block, COLUMNS, {b"DP": True, b"AF": False}, _declared(), used) == 3
    assert used == {b"contig": {b"chr2"}, b"INFO": {b"NEWKEY"}, b"FORMAT": {b"AD"}, b"FLAG": {b"SOMATIC"},
                    b"FILTER": {b"q10", b"lowqual"}}


@pytest.mark.parametrize("bad, message", [
    ("chr1\t5\t.\tA\tG\t50\tPASS\tDP=x\tGT\t0/1", r"INFO/DP value 'x' is not an integer .* \(record chr1:5\)$"),
    ("chr1\t5\t.\tA\tG\tfifty\tPASS\tDP=1\tGT\t0/1", r"QUAL 'fifty' is not a number or '\.' \(record chr1:5\)$"),
    ("", r"blank line inside the records"),
    ("chr1\t5\t.\tA\tG\t50\tPASS\tDP=1\tGT", r"9 tab-separated columns, .* \(record chr1:5\)$"),
    ("chr2\t9\t.\t\tG\t50\tPASS\tDP=1\tGT\t0/1", r"column 4 is empty .* \(record chr2:9\)$"),
])
def test_a_bad_line_deep_in_a_large_file_is_named_by_its_line(tmp_path, bad, message):
    """Several blocks of good lines (plain and gzip), then one bad line: the message names that line and, where
    the line has them, its CHROM and POS (a compressed file's line number is hard to look up)."""
    good = "".join(f"chr1\t{p}\t.\tA\tG\t50\tPASS\tDP={p % 60}\tGT\t0/1\n" for p in range(1, 40001))
    header_lines = HEADER.count("\n")
    for path, opener in ((tmp_path / "x.vcf", open), (tmp_path / "x.vcf.gz", gzip.open)):
        with opener(path, "wt") as fh:
            fh.write(HEADER + good + bad + "\n" + good[:1000])
        with pytest.raises(VcfError, match=rf"{re.escape(path.name)}:{header_lines + 40001}: {message}"):
            scan_vcf_text(str(path))
    with open(tmp_path / "ok.vcf", "w") as fh:
        fh.write(HEADER + good + "chr1\t7\t.\tA\tG\t50\tPASS\tDP=1\tGT\t0/1")  # no line end at the end
    scan = scan_vcf_text(str(tmp_path / "ok.vcf"))
    assert (scan.header_lines, scan.records, scan.undeclared) == (header_lines, 40001, {})
