"""Reference FASTA access: fetch with N padding, contig aliases, bgzip, index creation."""

from __future__ import annotations

import os
import pickle
import shutil
import stat
from pathlib import Path

import pysam
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.realdata import DATA, need
import varxpress.io.genome as genome_mod
from varxpress.errors import FastaIndexError, GenomeError, UnknownContigError
from varxpress.io.genome import Genome, contig_aliases, read_contig_map



def read_plain_fasta(path: Path) -> dict[str, str]:
    seqs: dict[str, list[str]] = {}
    name = ""
    for line in path.read_text().splitlines():
        if line.startswith(">"):
            name = line[1:].split()[0]
            seqs[name] = []
        else:
            seqs[name].append(line.strip())
    return {k: "".join(v) for k, v in seqs.items()}


def write_fasta(path: Path, contigs: dict[str, str]) -> Path:
    path.write_text("".join(f">{name}\n{seq}\n" for name, seq in contigs.items()))
    return path


def test_contigs_and_fetch(tiny_genome):
    seqs = read_plain_fasta(tiny_genome)
    with Genome(tiny_genome) as g:
        assert g.contigs == {"chr1": 200, "chr2": 60}
        assert g.length("chr2") == 60
        assert g.fetch("chr1", 0, 200) == seqs["chr1"]
        assert g.fetch("chr1", 55, 65) == seqs["chr1"][55:65]  # across a line break
        assert g.fetch("chr1", 10, 10) == ""
    assert Path(f"{tiny_genome}.fai").exists()  # index made beside the FASTA


def test_fetch_pads_with_n(tiny_genome):
    s = read_plain_fasta(tiny_genome)["chr2"]
    with Genome(tiny_genome) as g:
        assert g.fetch("chr2", -3, 2) == "NNN" + s[:2]
        assert g.fetch("chr2", 58, 63) == s[58:] + "NNN"
        assert g.fetch("chr2", -2, 62) == "NN" + s + "NN"
        assert g.fetch("chr2", 70, 73) == "NNN"
        assert g.fetch("chr2", -9, -4) == "NNNNN"
        with pytest.raises(GenomeError, match="end is before start"):
            g.fetch("chr2", 5, 4)


@given(start=st.integers(-30, 230), length=st.integers(0, 60))
def test_fetch_property(start, length, tmp_path_factory):
    path = tmp_path_factory.getbasetemp() / "prop_genome.fa"
    if not path.exists():
        write_fasta(path, {"chr1": "ACGTTGCAAC" * 20})
    seq = "ACGTTGCAAC" * 20
    with Genome(path) as g:
        got = g.fetch("chr1", start, start + length)
    expected = "".join(seq[i] if 0 <= i < len(seq) else "N" for i in range(start, start + length))
    assert got == expected


def test_lowercase_is_uppercased(tmp_path):
    path = write_fasta(tmp_path / "soft.fa", {"1": "acgtNNacgt"})
    with Genome(path) as g:
        assert g.fetch("1", 0, 10) == "ACGTNNACGT"


def test_aliases(tmp_path):
    path = write_fasta(tmp_path / "ens.fa", {"1": "ACGT", "MT": "GGGG", "X": "TTTT"})
    with Genome(path) as g:
        assert g.resolve("chr1") == "1"
        assert g.resolve("1") == "1"
        assert g.resolve("chrM") == "MT"
        assert g.resolve("chrX") == "X"
        assert g.resolve("chr2") is None
        assert g.fetch("chr1", 0, 4) == "ACGT"
        assert "chrM" in g and "chr9" not in g
    path2 = write_fasta(tmp_path / "ucsc.fa", {"chr1": "ACGT", "chrM": "GGGG"})
    with Genome(path2) as g:
        assert g.resolve("1") == "chr1"
        assert g.resolve("MT") == "chrM"
        assert g.fetch("MT", 1, 3) == "GG"


def test_contig_aliases_function():
    assert contig_aliases("chr1") == ["1"]
    assert contig_aliases("1") == ["chr1"]
    assert "chrM" in contig_aliases("MT") and "MT" in contig_aliases("chrM")


def test_unknown_contig(tiny_genome):
    with Genome(tiny_genome) as g:
        with pytest.raises(UnknownContigError, match="'chr7' is not in") as info:
            g.fetch("chr7", 0, 5)
        assert isinstance(info.value, KeyError)
        with pytest.raises(UnknownContigError, match="'chrZ' is not in"):
            g.length("chrZ")


def test_contig_map(tmp_path):
    path = write_fasta(tmp_path / "odd.fa", {"NC_000001.11": "ACGTACGT", "chr2": "TTTT"})
    map_path = tmp_path / "map.tsv"
    map_path.write_text("# vcf name -> fasta name\nchr1\tNC_000001.11\n\n1 NC_000001.11\n")
    mapping = read_contig_map(map_path)
    assert mapping == {"chr1": "NC_000001.11", "1": "NC_000001.11"}
    with Genome(path, contig_map=mapping) as g:
        assert g.resolve("chr1") == "NC_000001.11"
        assert g.resolve("1") == "NC_000001.11"
        assert g.resolve("2") == "chr2"  # aliases still work
        assert g.fetch("chr1", 2, 5) == "GTA"
    with Genome(path) as g:
        assert g.resolve("chr1") is None


def test_contig_map_errors(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("chr1\tA\tB\n")
    with pytest.raises(GenomeError, match=r"bad.tsv:1: .*2 columns"):
        read_contig_map(bad)
    bad.write_text("chr1\tA\nchr1\tB\n")
    with pytest.raises(GenomeError, match=r"bad.tsv:2: contig 'chr1' is mapped to both"):
        read_contig_map(bad)


def test_bgzip_fasta_index_creation(tiny_genome, tmp_path):
    gz = Path(f"{tiny_genome}.gz")
    pysam.tabix_compress(str(tiny_genome), str(gz))
    assert not Path(f"{gz}.fai").exists() and not Path(f"{gz}.gzi").exists()
    seqs = read_plain_fasta(tiny_genome)
    with Genome(gz) as g:
        assert g.compression == "bgzip"
        assert g.fetch("chr1", 100, 150) == seqs["chr1"][100:150]
        assert g.fetch("chr2", 55, 65) == seqs["chr2"][55:] + "NNNNN"
        fp = g.fingerprint()
    assert Path(f"{gz}.fai").exists() and Path(f"{gz}.gzi").exists()
    with Genome(tiny_genome) as plain:
        assert plain.fingerprint() == fp  # same contigs and layout: same .fai
    # a .gzi lost on its own is remade too
    Path(f"{gz}.gzi").unlink()
    with Genome(gz) as g:
        assert g.fetch("chr1", 0, 5) == seqs["chr1"][:5]
    assert Path(f"{gz}.gzi").exists()


def test_plain_gzip_rejected(tiny_genome):
    import gzip

    gz = Path(f"{tiny_genome}.gz")
    gz.write_bytes(gzip.compress(tiny_genome.read_bytes()))
    with pytest.raises(GenomeError, match="not bgzip-compressed.*bgzip"):
        Genome(gz)


def test_missing_file(tmp_path):
    with pytest.raises(GenomeError, match="does not exist"):
        Genome(tmp_path / "nope.fa")


def test_create_index_off(tiny_genome):
    with pytest.raises(FastaIndexError, match=f"samtools faidx {tiny_genome}"):
        Genome(tiny_genome, create_index=False)
    assert not Path(f"{tiny_genome}.fai").exists()


def test_unwritable_folder_message(tiny_genome, monkeypatch):
    # Runs everywhere (root ignores chmod): the folder is reported unwritable.
    monkeypatch.setattr(genome_mod, "_writable", lambda folder: False)
    with pytest.raises(FastaIndexError, match=rf"not writable; make it with `samtools faidx {tiny_genome}`"):
        Genome(tiny_genome)
    assert not Path(f"{tiny_genome}.fai").exists()


def test_read_only_folder_real(tiny_genome, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    fasta = ro / "g.fa"
    shutil.copy(tiny_genome, fasta)
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as root (or similar): chmod does not make the folder read-only here; "
                        "test_unwritable_folder_message covers the message")
        with pytest.raises(FastaIndexError, match="samtools faidx"):
            Genome(fasta)
    finally:
        ro.chmod(stat.S_IRWXU)


def test_pickle_reopens(tiny_genome):
    with Genome(tiny_genome) as g:
        g2 = pickle.loads(pickle.dumps(g))
        assert g2.fetch("chr1", 0, 20) == g.fetch("chr1", 0, 20)
        g2.close()
        g2.close()  # idempotent


@pytest.mark.realdata
def test_real_hg38_chr1(tmp_path):
    src = need(DATA / "hg38" / "hg38_chr1_0-1000000.fa.gz")
    fasta = tmp_path / src.name
    shutil.copy(src, fasta)
    with Genome(fasta) as g:
        assert g.contigs == {"chr1": 1_000_000}
        seq = g.fetch("1", 900_000, 900_100)
        assert len(seq) == 100 and set(seq) <= set("ACGTN")
        assert g.fetch("chr1", 999_990, 1_000_010).endswith("N" * 10)


# -- a stale index: the FASTA rewritten after it was indexed ----------------------------------------------------------


def _wrapped(contigs: dict[str, str], width: int) -> str:
    return "".join(f">{n}\n" + "".join(s[i:i + width] + "\n" for i in range(0, len(s), width))
                   for n, s in contigs.items())


@pytest.mark.parametrize("change", ["line_width", "longer_contig", "renamed", "contig_removed"])
def test_stale_fai_of_a_rewritten_fasta_is_refused_with_the_fix(tmp_path, change):
    """The FASTA is rewritten after indexing, the index kept and newer: htslib would read the wrong bases."""
    seqs = {"chr1": "ACGT" * 30, "chr2": "GGCCA" * 13}
    fasta = tmp_path / "ref.fa"
    fasta.write_text(_wrapped(seqs, 60))
    Genome(fasta).close()  # makes ref.fa.fai
    new = dict(seqs)
    width = 60
    if change == "line_width":
        width = 50
    elif change == "longer_contig":
        new["chr1"] += "TTTTTTT"
    elif change == "renamed":
        new = {"chrA" if k == "chr1" else k: v for k, v in seqs.items()}
    else:
        del new["chr2"]
    stamp = os.stat(f"{fasta}.fai").st_mtime
    fasta.write_text(_wrapped(new, width))
    os.utime(fasta, (stamp - 10, stamp - 10))  # dates do not matter for a plain FASTA: its layout is checked
    with pytest.raises(FastaIndexError, match=r"does not match .*samtools faidx .*ref\.fa"):
        Genome(fasta)
    os.unlink(f"{fasta}.fai")  # the fix the message gives
    with Genome(fasta) as g:
        assert g.fetch(next(iter(new)), 0, 8) == next(iter(new.values()))[:8]


@pytest.mark.parametrize("line", ["chr1\t120\t6\n", "chr1\t120\t6\tsixty\t61\n"])
def test_an_fai_line_that_is_not_five_numbers_is_refused_with_its_line(tmp_path, line):
    fasta = tmp_path / "ref.fa"
    fasta.write_text(_wrapped({"chr1": "ACGT" * 30}, 60))
    (tmp_path / "ref.fa.fai").write_text(line)
    with pytest.raises(FastaIndexError, match=r"line 1 is not NAME LENGTH OFFSET LINEBASES LINEWIDTH"):
        Genome(fasta)


def test_consistent_fai_is_accepted_whatever_its_date(tiny_genome):
    Genome(tiny_genome).close()
    stamp = os.stat(tiny_genome).st_mtime
    os.utime(f"{tiny_genome}.fai", (stamp - 3600, stamp - 3600))  # a copy that reordered the dates
    with Genome(tiny_genome) as g:
        assert g.fetch("chr1", 0, 5) == read_plain_fasta(tiny_genome)["chr1"][:5]


def test_bgzip_fasta_older_than_its_index_is_refused(tiny_genome):
    gz = Path(f"{tiny_genome}.gz")
    pysam.tabix_compress(str(tiny_genome), str(gz))
    Genome(gz).close()
    stamp = os.stat(f"{gz}.fai").st_mtime
    os.utime(gz, (stamp + 60, stamp + 60))  # rewritten after indexing
    with pytest.raises(FastaIndexError, match=r"older than .*delete .*\.fai and .*\.gzi.*samtools faidx"):
        Genome(gz)
