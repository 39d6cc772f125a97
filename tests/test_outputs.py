"""Opening outputs (varxpress.io.outputs): what each kind of output name gets, and what is never destroyed.

Nothing here touches the real /dev: devices, FIFOs and links are made in tmp_path, so a wrong rename is seen on
them (a FIFO or device node turned into a regular file) without harm.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from varxpress.io import outputs
from varxpress.errors import OutputError, UsageError
from varxpress.io.distinct import check_distinct
from varxpress.io.outputs import atomic_folder, atomic_path, in_place, open_output, pipe_reader_gone, sweep_partials
from varxpress.models.registry import data_path


def write(path: str, text: str) -> None:
    with open(path, "w") as fh:
        fh.write(text)


def drain(fifo: Path) -> tuple[threading.Thread, list[bytes]]:
    """A thread reading ``fifo`` to its end (a FIFO's writer blocks until a reader opens it)."""
    got: list[bytes] = []

    def read():
        with open(fifo, "rb") as fh:
            got.append(fh.read())

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread, got


# -- regular files and links ------------------------------------------------------------------------------------------


def test_regular_file_is_replaced_and_keeps_its_permissions(tmp_path):
    dest = tmp_path / "out.tsv"
    dest.write_text("old\n")
    dest.chmod(0o640)
    with atomic_path(dest) as tmp:
        assert Path(tmp).parent == tmp_path and tmp != str(dest)
        write(tmp, "new\n")
        assert dest.read_text() == "old\n"  # nothing visible until complete
    assert dest.read_text() == "new\n"
    assert stat.S_IMODE(dest.stat().st_mode) == 0o640
    assert os.listdir(tmp_path) == ["out.tsv"]


def test_symlink_target_is_replaced_and_the_link_stays_a_link(tmp_path):
    (tmp_path / "data").mkdir()
    target = tmp_path / "data" / "real.tsv"
    target.write_text("old\n")
    link = tmp_path / "link.tsv"
    link.symlink_to(target)
    with open_output(link) as fh:
        fh.write("new\n")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == "new\n"
    assert os.listdir(tmp_path / "data") == ["real.tsv"]  # the partial file was beside the target, and is gone


def test_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "link.tsv"
    link.symlink_to(tmp_path / "new.tsv")
    with open_output(link) as fh:
        fh.write("x\n")
    assert link.is_symlink() and (tmp_path / "new.tsv").read_text() == "x\n"


@pytest.mark.parametrize("folder_output", [False, True])
def test_a_dangling_symlink_into_a_missing_folder_names_that_folder(tmp_path, folder_output):
    link = tmp_path / "link.tsv"
    link.symlink_to(tmp_path / "gone" / "new.tsv")
    with pytest.raises(OutputError) as err:
        with (atomic_folder(link) if folder_output else open_output(link)):
            pass
    assert str(err.value) == (f"cannot write {link}: it is a symbolic link to {tmp_path / 'gone' / 'new.tsv'}, "
                              f"whose folder {tmp_path / 'gone'} does not exist")
    assert link.is_symlink() and sorted(os.listdir(tmp_path)) == ["link.tsv"]


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_failure_keeps_the_old_file_and_its_index(tmp_path, exc):
    dest = tmp_path / "out.vcf.gz"
    dest.write_text("old")
    (tmp_path / "out.vcf.gz.tbi").write_text("old index")
    with pytest.raises(exc):
        with atomic_path(dest, [".tbi"]) as tmp:
            write(tmp, "half")
            raise exc()
    assert dest.read_text() == "old" and (tmp_path / "out.vcf.gz.tbi").read_text() == "old index"
    assert sorted(os.listdir(tmp_path)) == ["out.vcf.gz", "out.vcf.gz.tbi"]


def test_index_is_replaced_with_its_file_and_a_stale_one_removed(tmp_path):
    dest = tmp_path / "out.vcf.gz"
    dest.write_text("old")
    (tmp_path / "out.vcf.gz.tbi").write_text("old tbi")
    (tmp_path / "out.vcf.gz.csi").write_text("old csi")
    with atomic_path(dest, [".tbi", ".csi"]) as tmp:
        write(tmp, "new")
        write(tmp + ".tbi", "new tbi")  # the new file gets a .tbi and no .csi
    assert (tmp_path / "out.vcf.gz.tbi").read_text() == "new tbi"
    assert sorted(os.listdir(tmp_path)) == ["out.vcf.gz", "out.vcf.gz.tbi"]


def test_an_existing_directory_is_refused(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(OutputError, match="is a directory"):
        with atomic_path(tmp_path / "d", [".tbi"]):
            pass
    assert os.listdir(tmp_path / "d") == [] and sorted(os.listdir(tmp_path)) == ["d"]


# -- written in place: FIFOs, devices, /dev/fd, standard output ------------------------------------------------------


@pytest.mark.parametrize("via_link", [False, True])
def test_fifo_is_written_in_place(tmp_path, via_link):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    name = fifo
    if via_link:
        name = tmp_path / "link"
        name.symlink_to(fifo)
    thread, got = drain(fifo)
    with open_output(name) as fh:
        fh.write("streamed\n")
    thread.join(10)
    assert got == [b"streamed\n"]
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert sorted(os.listdir(tmp_path)) == sorted(["pipe"] + (["link"] if via_link else []))


def test_fifo_gets_the_bytes_of_a_writer_that_needs_a_file(tmp_path):
    """HDF5 and figures need a seekable file: written to a temporary file, then copied into the FIFO."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    thread, got = drain(fifo)
    with atomic_path(fifo) as tmp:
        assert tmp != str(fifo)
        with open(tmp, "wb") as fh:
            fh.write(b"\x89HDF")
            fh.seek(0)
            fh.write(b"\x89")
    thread.join(10)
    assert got == [b"\x89HDF"] and stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_character_device_is_written_in_place(tmp_path):
    """A /dev/null made in tmp_path: a rename over it would turn it into a regular file."""
    null = tmp_path / "null"
    try:
        os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except (PermissionError, OSError) as exc:
        pytest.skip(f"cannot make a device node here ({exc}); the FIFO tests cover writing in place")
    assert in_place(null) and in_place(os.devnull)  # the real /dev/null is only looked at
    with open_output(null) as fh:
        fh.write("discarded\n")
    with atomic_path(null) as tmp:
        write(tmp, "discarded\n")
    assert stat.S_ISCHR(os.stat(null).st_mode)
    assert os.listdir(tmp_path) == ["null"]


def test_dev_fd_is_written_in_place(tmp_path):
    """Process substitution (`-o >(gzip > x)`) hands the program /dev/fd/N."""
    read_end, write_end = os.pipe()
    try:
        with atomic_path(f"/dev/fd/{write_end}", stream=True) as name:
            assert name == f"/dev/fd/{write_end}"
            write(name, "to the pipe\n")
        os.close(write_end)
        assert os.read(read_end, 100) == b"to the pipe\n"
    finally:
        os.close(read_end)
    assert os.listdir(tmp_path) == []


def test_dash_is_standard_output_for_every_kind_of_writer(tmp_path, capfd, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open_output("-") as fh:
        fh.write("text\n")
    with atomic_path("-") as tmp:  # a writer that needs a file name
        write(tmp, "file\n")
    assert capfd.readouterr().out == "text\nfile\n"
    assert os.listdir(tmp_path) == []  # no file named "-"


# -- stale partial files of killed runs -------------------------------------------------------------------------------


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_partials_of_the_same_output_are_swept_by_the_next_run(tmp_path):
    host = outputs._host_tag()
    day_ago = time.time() - outputs.STALE_AFTER_S - 60
    files = {
        f".out.vcf.{dead_pid()}-{host}.abcd1234.partial.vcf": True,  # this machine, writer gone
        f".out.vcf.{dead_pid()}-{host}.abcd1234.partial.vcf.tbi": True,
        f".out.vcf.{os.getppid()}-{host}.abcd1234.partial.vcf": False,  # its writer is alive
        f".out.vcf.{dead_pid()}-0000beef.abcd1234.partial.vcf": False,  # another machine, recent
        f".out.vcf.{dead_pid()}-0000feed.abcd1234.partial.vcf": True,  # another machine, a day old
        ".out.vcf.k3j9x_2a.partial.vcf": False,  # older naming: only by age
        ".out.vcf.q8w7e6r5.partial.vcf": True,
        f".other.vcf.{dead_pid()}-{host}.abcd1234.partial.vcf": False,  # another output
        ".out.vcf.notes": False,  # not a partial file
    }
    for name in files:
        (tmp_path / name).write_text("x")
    for name in (next(n for n in files if "0000feed" in n), ".out.vcf.q8w7e6r5.partial.vcf"):
        os.utime(tmp_path / name, (day_ago, day_ago))
    with open_output(tmp_path / "out.vcf") as fh:
        fh.write("new\n")
    kept = {n for n, stale in files.items() if not stale}
    assert set(os.listdir(tmp_path)) == kept | {"out.vcf"}


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="no /proc: a zombie cannot be told apart here")
def test_a_killed_writer_not_yet_reaped_counts_as_gone(tmp_path):
    """A writer killed with -9 whose parent has not waited for it yet is a zombie: it exists, but writes nothing
    more, so its partial file is stale."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        proc.kill()
        for _ in range(200):  # until the kernel has made it a zombie (not reaped: no wait() yet)
            with open(f"/proc/{proc.pid}/stat", "rb") as fh:
                if fh.read().rpartition(b")")[2].split()[0] == b"Z":
                    break
            time.sleep(0.01)
        stale = tmp_path / f".out.vcf.{proc.pid}-{outputs._host_tag()}.abcd1234.partial.vcf"
        stale.write_text("x")
        live = tmp_path / f".out.vcf.{os.getpid()}-{outputs._host_tag()}.abcd1234.partial.vcf"
        live.write_text("x")
        assert sweep_partials(tmp_path / "out.vcf") == [stale.name]
    finally:
        proc.wait()


def test_a_failed_run_sweeps_nothing(tmp_path):
    stale = tmp_path / f".out.vcf.{dead_pid()}-{outputs._host_tag()}.abcd1234.partial.vcf"
    stale.write_text("x")
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "out.vcf"):
            raise RuntimeError
    assert os.listdir(tmp_path) == [stale.name]
    assert sweep_partials(tmp_path / "out.vcf") == [stale.name]


# -- output = input ---------------------------------------------------------------------------------------------------


def test_same_file_by_inode_not_by_name(tmp_path):
    vcf = tmp_path / "in.vcf"
    vcf.write_text("data")
    (tmp_path / "alias.vcf").symlink_to(vcf)
    os.link(vcf, tmp_path / "hard.vcf")
    for name in ("alias.vcf", "hard.vcf", "./in.vcf"):
        with pytest.raises(UsageError, match="is the input --vcf"):
            check_distinct({"--vcf": [str(vcf)]}, {"--out": [str(tmp_path / name)]})
    check_distinct({"--vcf": [str(vcf)]}, {"--out": [str(tmp_path / "other.vcf")]})


def test_outputs_that_are_one_file_are_refused(tmp_path):
    with pytest.raises(UsageError, match="same file"):
        check_distinct({}, {"--out": [str(tmp_path / "x")], "--tsv": [str(tmp_path / "." / "x")]})
    with pytest.raises(UsageError, match="standard output"):
        check_distinct({}, {"--out": ["-"], "--tsv": ["-"]})
    check_distinct({}, {"--out": [os.devnull], "--tsv": [os.devnull], "--stats": [os.devnull]})  # discards: fine


# -- through the command line: every subcommand ------------------------------------------------------------------------

from tests.corpus import CORPUS, reference, toy_model  # noqa: E402,F401 (fixtures)
from varxpress.cli import build_parser, files_of, main  # noqa: E402


@pytest.fixture
def inputs(tmp_path, reference, toy_model) -> dict[str, Path]:
    """Copies of every input a subcommand reads, in tmp_path/in (the outputs go to tmp_path/out)."""
    folder = tmp_path / "in"
    folder.mkdir()
    (tmp_path / "out").mkdir()
    names = {"vcf": CORPUS / "mnvs.vcf", "fasta": reference["fasta"], "fai": Path(f"{reference['fasta']}.fai"),
             "tss": reference["tss"], "model": toy_model}
    paths = {}
    for key, src in names.items():
        paths[key] = folder / src.name
        paths[key].write_bytes(src.read_bytes())
    paths["contigs"] = folder / "contigs.tsv"
    paths["contigs"].write_text("1\tchr1\n")
    return paths


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def score_args(p: dict[str, Path], *extra) -> list[str]:
    return ["score", str(p["vcf"]), "--fasta", str(p["fasta"]), "--tss", str(p["tss"]), "--model", str(p["model"]),
            "--quiet", *map(str, extra)]


@pytest.mark.parametrize("option, key", [("--tsv", "vcf"), ("--stats", "fasta"), ("--out", "tss"),
                                         ("--out", "model"), ("--tsv", "fai"), ("--stats", "contigs")])
def test_score_output_equal_to_an_input_is_refused_before_anything_is_written(inputs, tmp_path, capfd, option, key):
    before = snapshot(tmp_path / "in")
    out = ["--out", tmp_path / "out" / "x.vcf.gz"] if option != "--out" else []
    status = main(score_args(inputs, "--contig-map", inputs["contigs"], *out, option, inputs[key]))
    assert status == 2
    err = capfd.readouterr().err
    assert "would destroy the input" in err and len(err.strip().splitlines()) == 1
    assert snapshot(tmp_path / "in") == before and os.listdir(tmp_path / "out") == []


def test_standard_streams_redirected_to_the_input_are_refused(inputs, tmp_path):
    """`score - -o x.vcf < x.vcf` and `score x.vcf >> x.vcf`: the shell opens the input as a standard stream, so
    the names differ but the file is one; both once destroyed the input (replaced, or appended to)."""
    before = snapshot(tmp_path / "in")
    vcf = inputs["vcf"]
    cmd = [sys.executable, "-m", "varxpress", *score_args(inputs)]
    with open(vcf, "rb") as stdin:
        stdin_case = subprocess.run([*cmd[:4], "-", *cmd[5:], "--out", str(vcf)], stdin=stdin, capture_output=True,
                                    text=True)
    with open(vcf, "ab") as stdout:
        stdout_case = subprocess.run(cmd, stdout=stdout, stderr=subprocess.PIPE, text=True)
    assert stdin_case.returncode == 2 and "is the input VCF - (standard input)" in stdin_case.stderr
    assert stdout_case.returncode == 2 and "output --out - (standard output) is the input VCF" in stdout_case.stderr
    assert snapshot(tmp_path / "in") == before
    with open(vcf, "rb") as stdin, open(tmp_path / "out" / "piped.vcf", "wb") as stdout:  # other files: fine
        assert subprocess.run([*cmd[:4], "-", *cmd[5:]], stdin=stdin, stdout=stdout).returncode == 0
    assert records_of(tmp_path / "out" / "piped.vcf")


def test_an_output_reached_through_a_link_is_still_the_input(inputs, tmp_path, capfd):
    link = tmp_path / "out" / "alias.vcf"
    link.symlink_to(inputs["vcf"])
    before = snapshot(tmp_path / "in")
    assert main(score_args(inputs, "--out", link)) == 2
    assert "is the input VCF" in capfd.readouterr().err
    assert snapshot(tmp_path / "in") == before and link.is_symlink()


@pytest.mark.parametrize("outs", [("--out", "same.vcf", "--tsv", "same.vcf"), ("--out", "-", "--tsv", "-"),
                                  ("--out", "-", "--stats", "-"), ("--tsv", "t.tsv", "--stats", "./t.tsv")])
def test_two_outputs_that_are_one_file_are_refused(inputs, tmp_path, capfd, monkeypatch, outs):
    monkeypatch.chdir(tmp_path / "out")
    assert main(score_args(inputs, *outs)) == 2
    cap = capfd.readouterr()
    assert cap.out == "" and ("same file" in cap.err or "both write to standard output" in cap.err)
    assert os.listdir(tmp_path / "out") == []


@pytest.mark.parametrize("argv", [
    ["predict", "--model", "{model}", "--fasta", "{fasta}", "-o", "{model}"],
    ["predict", "--model", "{model}", "--fasta", "{fasta}", "-o", "{fasta}"],
    ["background", "--fasta", "{fasta}", "--tss", "{tss}", "--model", "{model}", "-o", "{model}"],
    ["mutagenesis", "--gene", "G1", "--fasta", "{fasta}", "--tss", "{tss}", "--model", "{model}",
     "--out-prefix", "{tss_stem}"],
    ["explain", "chr1:50:A:C", "--vcf", "{vcf}", "--fasta", "{fasta}", "--tss", "{tss}", "--model", "{model}",
     "-o", "{vcf}"],
    ["import-xpresso", "{model}", "-o", "{model}"],
    ["train", "--dataset", "{model}", "--hparams", "{tss}", "-o", "{tss}"],
    ["evaluate", "--model", "{model}", "--dataset", "{fasta}", "-o", "{fasta}"],
    ["prepare", "--labels", "{tss}", "--genome", "{fasta}", "--tss", "{tss}", "-o", "{fasta}"],
])
def test_every_subcommand_refuses_an_output_equal_to_an_input(inputs, tmp_path, capfd, argv):
    fill = {k: str(v) for k, v in inputs.items()} | {"tss_stem": str(inputs["tss"].with_suffix(""))}
    before = snapshot(tmp_path / "in")
    assert main([a.format(**fill) for a in argv] + ["--quiet"]) == 2
    assert "would destroy the input" in capfd.readouterr().err
    assert snapshot(tmp_path / "in") == before


@pytest.mark.parametrize("target", ["xpresso_human_hg38.vxm.h5", "hg38_promoters_cage_corrected.bed.gz",
                                    "xpresso_human_hg38.vxm.h5.background.h5", "workflow/Snakefile"])
def test_files_read_without_being_named_are_inputs_too(inputs, tmp_path, capfd, target):
    """The bundled default model, TSS set and background are read without being named on the command line: an
    output naming one is refused as any input is (it would break every later run)."""
    path = Path(data_path(target))
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    args = ["score", str(inputs["vcf"]), "--fasta", str(inputs["fasta"]), "--quiet", "--out", str(path)]
    assert main(args) == 2
    err = capfd.readouterr().err
    assert "is the input (bundled with varxpress)" in err and "would destroy the input" in err
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_the_background_beside_a_model_is_an_input_except_to_background(inputs, tmp_path, capfd):
    beside = Path(f"{inputs['model']}.background.h5")
    beside.write_bytes(b"a background")
    assert main(score_args(inputs, "--out", tmp_path / "out" / "x.vcf.gz", "--tsv", beside)) == 2
    assert "is the input --model background" in capfd.readouterr().err
    assert beside.read_bytes() == b"a background" and os.listdir(tmp_path / "out") == []
    files = files_of(build_parser(only="background"), build_parser(only="background").parse_args(
        ["background", "--fasta", str(inputs["fasta"]), "--tss", str(inputs["tss"]), "--model", str(inputs["model"]),
         "--out", str(beside)]))
    check_distinct(*files)  # `background` writes that file: not refused


def test_files_an_option_reads_through_another_are_inputs_too(inputs, tmp_path, capfd):
    """An ensemble's or a combination's member models and backgrounds, a --regions file and, for `background`,
    the file beside a bundled model named by its path: none may be an output."""
    from varxpress.models.ensemble import export_ensemble

    ens = export_ensemble([inputs["model"]], tmp_path / "ens")
    member = next(ens.parent.glob("*.vxm.h5")) if ens.is_file() else next(ens.glob("*.vxm.h5"))
    combination = tmp_path / "comb" / "c.json"
    combination.parent.mkdir()
    other = tmp_path / "elsewhere.vxm.h5"
    other.write_bytes(inputs["model"].read_bytes())
    combination.write_text(json.dumps({"format": "varxpress-combination", "version": 1, "name": "c",
                                       "members": [{"model": "../elsewhere.vxm.h5", "name": "m"}]}))
    regions = tmp_path / "r.bed"
    regions.write_text("chr1\t0\t100\n")
    base = ["score", str(inputs["vcf"]), "--fasta", str(inputs["fasta"]), "--tss", str(inputs["tss"]), "--quiet",
            "--out", str(tmp_path / "out" / "x.vcf")]
    for extra, target in ((["--ensemble", str(ens)], member), (["--combination", str(combination)], other),
                          (["--model", str(inputs["model"]), "--regions", str(regions)], regions)):
        before = target.read_bytes()
        assert main([*base, *extra, "--stats", str(target)]) == 2, extra
        assert "would destroy the input" in capfd.readouterr().err
        assert target.read_bytes() == before
    assert main(["background", "--fasta", str(inputs["fasta"]), "--model", data_path("xpresso_human_hg38.vxm.h5"),
                 "-n", "5", "--quiet"]) == 2
    assert "ships with varxpress and is not replaced by default" in capfd.readouterr().err


def test_a_json_that_is_not_a_manifest_protects_nothing_beside_it(tmp_path):
    """Only a model option's manifest reads the model files in its folder: retraining over a model kept beside its
    hyperparameter file (train -p run/hp.json -o run/m.vxm.h5) is not refused."""
    run = tmp_path / "run"
    run.mkdir()
    for name in ("hp.json", "set.vxd.h5", "m.vxm.h5"):
        (run / name).write_text("x")
    parser = build_parser(only="train")
    args = parser.parse_args(["train", "-d", str(run / "set.vxd.h5"), "-p", str(run / "hp.json"), "-o",
                              str(run / "m.vxm.h5")])
    args.command_line = ""
    inputs, outputs = files_of(parser, args)
    assert not any(key.endswith(" members") for key in inputs)
    check_distinct(inputs, outputs)


def test_out_naming_a_directory_is_one_line_and_leaves_nothing(inputs, tmp_path, capfd):
    folder = tmp_path / "out" / "d.vcf.gz"
    folder.mkdir()
    assert main(score_args(inputs, "--out", folder)) == 1
    err = capfd.readouterr().err
    assert "is a directory" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert os.listdir(folder) == [] and os.listdir(tmp_path / "out") == ["d.vcf.gz"]


def records_of(path) -> list[str]:
    import cyvcf2

    return [f"{r.CHROM}:{r.POS}" for r in cyvcf2.VCF(str(path))]


@pytest.mark.parametrize("name, magic, index", [("x.vcf", b"##fileformat", None), ("x.vcf.gz", b"\x1f\x8b", ".tbi"),
                                                ("x.gz", b"\x1f\x8b", ".tbi"), ("x.vcf.bgz", b"\x1f\x8b", ".tbi"),
                                                ("x.bcf", b"\x1f\x8b", ".csi"), ("x.txt", b"##fileformat", None),
                                                ("X.VCF.GZ", b"\x1f\x8b", ".tbi"), ("X.BCF", b"\x1f\x8b", ".csi")])
def test_each_output_extension_writes_what_docs_output_md_says(inputs, tmp_path, name, magic, index):
    out = tmp_path / "out" / name
    assert main(score_args(inputs, "--out", out)) == 0
    data = out.read_bytes()
    assert data.startswith(magic)
    if magic == b"\x1f\x8b":  # BGZF, not plain gzip: the FEXTRA "BC" subfield (SAM spec 4.1)
        assert data[3] & 4 and data[12:14] == b"BC"
    assert records_of(out) == records_of(inputs["vcf"])
    assert sorted(os.listdir(tmp_path / "out")) == sorted([name] + ([name + index] if index else []))


def test_a_gzip_tsv_is_the_same_bytes_on_every_run(inputs, tmp_path):
    """gzip.open would put the temporary file's name and the time in the header: two runs would differ and
    ``gunzip -N`` would restore a hidden partial-file name."""
    runs = []
    tsv = tmp_path / "out" / "x.tsv.gz"
    for _ in (1, 2):
        assert main(score_args(inputs, "--out", tmp_path / "out" / "x.vcf", "--tsv", tsv)) == 0
        runs.append(tsv.read_bytes())
        time.sleep(1.1)  # a header time would differ
    assert runs[0] == runs[1]
    flags, mtime = runs[0][3], int.from_bytes(runs[0][4:8], "little")
    assert not flags & 8 and mtime == 0  # no FNAME field, no time (RFC 1952)


def test_dash_writes_the_vcf_to_standard_output(inputs, tmp_path, capfd, monkeypatch):
    monkeypatch.chdir(tmp_path / "out")
    assert main(score_args(inputs, "--out", "-")) == 0
    out = capfd.readouterr().out
    assert out.startswith("##fileformat=VCF") and len([l for l in out.splitlines() if not l.startswith("#")]) == 3
    assert os.listdir(tmp_path / "out") == []


def unsorted_copy(vcf: Path, dest: Path) -> Path:
    lines = vcf.read_text().splitlines()
    header, body = [l for l in lines if l.startswith("#")], [l for l in lines if not l.startswith("#")]
    dest.write_text("\n".join(header + body[::-1]) + "\n")
    assert body[::-1] != body
    return dest


@pytest.mark.parametrize("name, index", [("x.vcf.gz", ".tbi"), ("x.bcf", ".csi")])
def test_rewriting_from_an_unsorted_input_leaves_no_stale_index(inputs, tmp_path, caplog, name, index):
    out = tmp_path / "out" / name
    assert main(score_args(inputs, "--out", out)) == 0
    assert (tmp_path / "out" / (name + index)).exists()
    unsorted = unsorted_copy(inputs["vcf"], tmp_path / "unsorted.vcf")
    args = score_args(inputs, "--out", out)
    args[1] = str(unsorted)
    assert main(args) == 0  # a valid, complete, unindexed output, as docs/output.md promises
    assert os.listdir(tmp_path / "out") == [name]
    assert records_of(out) == records_of(unsorted)
    assert f"{out} is complete but not indexed" in caplog.text and "sort" in caplog.text


def test_region_error_reaches_nobody_before_the_header_is_written(inputs):
    """A separate process: htslib buffers the header, which reaches stdout when the process exits."""
    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(repo), TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-m", "varxpress", *score_args(inputs, "--out", "-", "--region",
                                                                          "chr1:1-100")],
                          capture_output=True, env=env, cwd=repo, timeout=300)
    assert done.returncode == 1 and b"index" in done.stderr
    assert done.stdout == b""


class _ClosedPipe:
    """Standard output whose reader (`| head`) goes away after ``limit`` writes."""

    def __init__(self, limit: int):
        self.text, self.writes, self.limit = "", 0, limit

    def write(self, text: str) -> int:
        self.writes += 1
        if self.writes > self.limit:
            raise BrokenPipeError(32, "Broken pipe")
        self.text += text
        return len(text)

    def flush(self) -> None:
        pass

    def fileno(self) -> int:
        import io

        raise io.UnsupportedOperation("no file descriptor")


def test_tsv_on_a_closed_pipe_still_completes_the_vcf(inputs, tmp_path, caplog, monkeypatch):
    pipe = _ClosedPipe(limit=2)
    monkeypatch.setattr(sys, "stdout", pipe)
    out = tmp_path / "out" / "x.vcf.gz"
    assert main(score_args(inputs, "--out", out, "--tsv", "-")) == 141
    assert pipe.text.startswith("##") and pipe.text.count("\n") < 3 + 6  # the reader got the beginning only
    assert records_of(out) == records_of(inputs["vcf"])
    assert sorted(os.listdir(tmp_path / "out")) == ["x.vcf.gz", "x.vcf.gz.tbi"]
    assert "reader of standard output went away" in caplog.text and "disk" not in caplog.text


def test_predict_dash_is_standard_output_not_a_file(inputs, tmp_path, capfd, monkeypatch):
    monkeypatch.chdir(tmp_path / "out")
    assert main(["predict", "--model", str(inputs["model"]), "--fasta", str(inputs["fasta"]), "-o", "-", "-q"]) == 0
    lines = capfd.readouterr().out.splitlines()
    contigs = [l.split("\t")[0] for l in inputs["fai"].read_text().splitlines()]
    assert lines[0] == "id\tprediction" and [l.split("\t")[0] for l in lines[1:]] == contigs
    assert os.listdir(tmp_path / "out") == []


def test_predict_into_a_fifo_writes_it_in_place(inputs, tmp_path):
    fifo = tmp_path / "out" / "pipe"
    os.mkfifo(fifo)
    thread, got = drain(fifo)
    assert main(["predict", "--model", str(inputs["model"]), "--fasta", str(inputs["fasta"]), "-o", str(fifo),
                 "-q"]) == 0
    thread.join(10)
    assert got[0].decode().startswith("id\tprediction\n") and stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_dash_and_dev_stdout_on_one_pipe_are_one_output(tmp_path):
    """`--out - --tsv /dev/stdout` would interleave both on the pipe (the pipe's inode is compared)."""
    done = subprocess.run(
        [sys.executable, "-c", "import os, sys\nfrom varxpress.io.distinct import check_distinct\n"
                               "check_distinct({}, {'--out': ['-'], '--tsv': ['/dev/stdout']})"],
        capture_output=True, cwd=Path(__file__).resolve().parents[1], timeout=60)
    assert done.returncode != 0 and b"are the same file" in done.stderr


def test_a_pipe_whose_reader_went_away_is_told_apart_from_files_and_read_pipes(tmp_path):
    read_end, write_end = os.pipe()
    try:
        assert not pipe_reader_gone(write_end)  # still read
        os.write(write_end, b"x" * 100)
        assert not pipe_reader_gone(write_end)  # data waiting is not an error
        os.close(read_end)
        assert pipe_reader_gone(write_end)
    finally:
        os.close(write_end)
    with open(tmp_path / "f.txt", "w") as fh:
        assert not pipe_reader_gone(fh.fileno())
