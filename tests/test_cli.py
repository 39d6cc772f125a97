"""The command line itself: entry points, --help of every subcommand, argument checks."""

from __future__ import annotations

import os

import subprocess
import sys
from pathlib import Path

import pytest

from varxpress import __version__
from varxpress.cli import SUBCOMMANDS, main
from varxpress.cli.types import region
from varxpress.io.regions import RegionError, parse_region, read_regions

ROOT = Path(__file__).resolve().parents[1]


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"varxpress {__version__}"


@pytest.mark.parametrize("command", sorted(SUBCOMMANDS))
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: varxpress {command}")
    assert "--quiet" in out


def test_top_level_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in SUBCOMMANDS:
        assert command in out


def test_missing_input_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["score", str(tmp_path / "nope.vcf"), "--fasta", str(tmp_path / "nope.fa")])
    assert exc.value.code == 2
    assert "no such file" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["score", "{vcf}", "--fasta", "{vcf}", "--out", "{missing}/x.vcf"],
                                  ["explain", "chr1:5:A:C", "--fasta", "{vcf}", "--out", "{missing}/x.html"],
                                  ["explain", "chr1:5:A:C", "--fasta", "{vcf}", "--out", "{missing}/reports"],
                                  ["mutagenesis", "--gene", "G", "--fasta", "{vcf}", "--out-prefix", "{missing}/m"]])
def test_output_folder_must_exist(tmp_path, capsys, argv):
    """A missing output folder is a usage error (exit 2) for every subcommand, before anything is loaded."""
    vcf = tmp_path / "a.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
    with pytest.raises(SystemExit) as exc:
        main([a.format(vcf=vcf, missing=tmp_path / "no") for a in argv])
    assert exc.value.code == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("prefix", ["{tmp}/", "{tmp}", "{tmp}/.", "{tmp}/missing/"])
def test_a_mutagenesis_prefix_that_names_a_folder_is_a_usage_error(tmp_path, capsys, prefix):
    """``-o out/`` or an existing folder would write a hidden ``.tsv`` (and ``out/.GENE.heatmap.png``)."""
    with pytest.raises(SystemExit) as exc:
        main(["mutagenesis", "--gene", "G", "--fasta", str(tmp_path), "--out-prefix", prefix.format(tmp=tmp_path)])
    assert exc.value.code == 2
    assert "names a folder; give a prefix of file names in it" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_plots_of_two_tsss_with_one_name_get_names_of_their_own():
    from types import SimpleNamespace

    from varxpress.cli.mutagenesis import _plot_name
    from varxpress.io.tss import TSS

    a, b, c = (TSS("ENSG1", "SAME", "chr1", 100, "+"), TSS("ENSG2", "SAME", "chr1", 900, "-"),
               TSS("ENSG3", "OTHER/1", "chr1", 5, "+"))
    scans = [SimpleNamespace(tss=t) for t in (a, b, c)]
    names = [_plot_name(t, scans) for t in (a, b, c)]
    assert names == ["SAME_ENSG1_101", "SAME_ENSG2_901", "OTHER_1"] and len(set(names)) == 3


@pytest.mark.parametrize("text,expected", [("chr1:1-100", ("chr1", 0, 100)), ("1:1,000-2,000", ("1", 999, 2000)),
                                           ("chrX", ("chrX", 0, 2**62)), ("HLA-A*01:01:5-6", ("HLA-A*01:01", 4, 6))])
def test_parse_region(text, expected):
    assert parse_region(text) == expected


@pytest.mark.parametrize("text", ["chr1:5-1", "chr1:0-10", "chr1:a-b"])
def test_parse_region_rejects(text):
    import argparse

    with pytest.raises(RegionError, match="region"):
        parse_region(text)
    with pytest.raises(argparse.ArgumentTypeError, match="region"):  # the option type: a usage error
        region(text)


def test_read_regions_bed_and_text(tmp_path):
    f = tmp_path / "r.txt"
    f.write_text("# shards\nchr1\t0\t100\nchr2:11-20\n\n")
    assert read_regions(str(f)) == [("chr1", 0, 100), ("chr2", 10, 20)]


@pytest.mark.parametrize("launcher", [[sys.executable, "-m", "varxpress"], [sys.executable, str(ROOT / "bin" / "varxpress")]])
def test_entry_points(launcher):
    res = subprocess.run(launcher + ["--version"], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0 and res.stdout.strip() == f"varxpress {__version__}"


def test_score_help_states_the_output_layout_the_writer_uses():
    from varxpress.cli import EPILOGS
    from varxpress.io.writers import VXP_FIELDS

    assert "|".join(VXP_FIELDS) in EPILOGS["score"]
    assert set(EPILOGS) == set(SUBCOMMANDS)


@pytest.mark.parametrize("name, kind", [("human-mouse", "ensemble"), ("duo", "combination")])
def test_evaluate_and_predict_refuse_a_bundled_ensemble_or_combination(name, kind, tmp_path, capsys, monkeypatch):
    """They take one network: a name of several models gets a usage error that says so, not an HDF5 complaint;
    a staged name (not bundled) gets the reason it is not there."""
    from varxpress.models import registry

    staged = registry.STAGED["human-xpresso-promoter"]  # a combination manifest, bundled here for the test
    monkeypatch.setitem(registry.BUNDLED, "duo", registry.BundledModel("duo", staged.model, staged.tss,
                                                                       staged.tss_offset, "hg38", "test entry",
                                                                       "combination"))
    for command in (["evaluate", "-d", str(tmp_path / "x.vxd.h5"), "-o", str(tmp_path / "e")],
                    ["predict", "--fasta", str(tmp_path / "x.fa"), "-o", str(tmp_path / "p.tsv")]):
        with pytest.raises(SystemExit) as exc:
            main([command[0], "--model", name, *command[1:]])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert f"{name} is a bundled {kind}" in err and "one model: human, mouse, yeast" in err
        with pytest.raises(SystemExit) as exc:
            main([command[0], "--model", "human-mpra-wtc11", *command[1:]])
        assert exc.value.code == 2 and "human-mpra-wtc11 is not bundled" in capsys.readouterr().err
