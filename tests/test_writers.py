import os

import pytest

from varxpress.errors import OutputError
from varxpress.scoring.scores import GeneScore
from varxpress.io.writers import TsvWriter, TSV_COLUMNS, atomic_path


def test_atomic_path_renames_only_on_success(tmp_path):
    dest = tmp_path / "out.txt"
    with atomic_path(dest) as tmp:
        assert tmp != str(dest)
        with open(tmp, "w") as fh:
            fh.write("done")
        assert not dest.exists()
    assert dest.read_text() == "done"
    assert os.listdir(tmp_path) == ["out.txt"]


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_atomic_path_leaves_nothing_behind_on_failure(tmp_path, exc):
    dest = tmp_path / "out.vcf.gz"
    dest.write_text("old")
    with pytest.raises(exc):
        with atomic_path(dest, [".tbi"]) as tmp:
            open(tmp, "w").write("half")
            open(tmp + ".tbi", "w").write("half")
            raise exc()
    assert dest.read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["out.vcf.gz"]


def test_atomic_path_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(OutputError, match="does not exist"):
        with atomic_path(tmp_path / "nope" / "x.vcf"):
            pass


def test_atomic_path_unwritable_folder_is_a_clear_error(tmp_path, monkeypatch):
    # root ignores folder modes, so the refusal a read-only folder gives is simulated at the system call
    import errno
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(OutputError, match="Permission denied.*writable"):
        with atomic_path(tmp_path / "x.vcf"):
            pass


def test_tsv_writer_header_and_row(tmp_path):
    out = tmp_path / "s.tsv"
    w = TsvWriter(str(out), ["varxpress_version=0"])
    w.write("chr1", 10, "rs1", "A", GeneScore(4, 0, "G", "ENSG1", "GENE1", "-", 100, -89, 1.25, 1.0, -0.25, None,
                                              ("off_contig",)))
    w.close()
    lines = out.read_text().splitlines()
    assert lines[0] == "## varxpress_version=0"
    assert lines[1].split("\t") == list(TSV_COLUMNS)
    row = dict(zip(TSV_COLUMNS, lines[2].split("\t")))
    assert row["record"] == "5" and row["delta"] == "-0.25" and row["log2fc"] == "." and row["flags"] == "off_contig"
    assert row["distance"] == "-89" and row["tss_pos"] == "100"


def test_check_written_counts_the_records_of_text_and_bgzf_outputs(tmp_path):
    import pysam

    from varxpress.io.writers import check_written

    body = "".join(f"chr1\t{p}\t.\tA\tG\t.\t.\t.\n" for p in range(1, 4001))
    plain = tmp_path / "o.vcf"
    plain.write_text("##fileformat=VCFv4.2\n##contig=<ID=chr1>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n" + body)
    packed = tmp_path / "o.vcf.gz"
    pysam.tabix_compress(str(plain), str(packed))
    for path in (plain, packed):
        check_written(str(path), 4000)
        with pytest.raises(OutputError, match="only 4000 of 4001 records reached the disk"):
            check_written(str(path), 4001)
    cut = tmp_path / "cut.vcf.gz"
    cut.write_bytes(packed.read_bytes()[: packed.stat().st_size // 2])
    with pytest.raises(OutputError, match="the written file is damaged"):
        check_written(str(cut), 4000, "out.vcf.gz")
