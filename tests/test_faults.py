"""Faults: a crash, Ctrl-C, a read-only folder, a full disk and bad model files never leave a partial output.

Outputs are written into a temporary file beside the destination and renamed when complete (writers.atomic_path);
these tests check the destination folder holds exactly what it held before whenever a run fails.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest

from tests.corpus import CORPUS, reference, toy_model  # noqa: F401 (fixtures)
from varxpress.scoring import engine, pipeline
from varxpress.io import writers
from varxpress.cli import main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def many(tmp_path_factory) -> Path:
    """A valid VCF of 3000 SNVs in the windows of genes G1 and G2 (a few hundred kB of output)."""
    lines = (CORPUS / "duplicate_records.vcf").read_text().splitlines()
    header = [line for line in lines if line.startswith("#")]
    seq = "".join(l.strip() for l in (CORPUS / "genome.fa").read_text().split(">chr2")[0].splitlines()[1:])
    body = []
    for i in range(3000):
        pos = 40 + i % 100
        ref = seq[pos - 1].upper()
        alt = {"A": "C", "C": "G", "G": "T", "T": "A"}[ref]
        body.append(f"chr1\t{pos}\tv{i}\t{ref}\t{alt}\t50\tPASS\tDP={i}\tGT\t0/1")
    path = tmp_path_factory.mktemp("vcf") / "many.vcf"
    path.write_text("\n".join(header + body) + "\n")
    return path


def score(vcf, reference, model, out, *extra) -> int:
    return main(["score", str(vcf), "--fasta", str(reference["fasta"]), "--tss", str(reference["tss"]),
                 "--model", str(model), "--out", str(out), "--quiet", *map(str, extra)])


@pytest.fixture
def outdir(tmp_path) -> Path:
    """An output folder holding a previous result, which a failed run must leave exactly as it was."""
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "out.vcf").write_text("previous result\n")
    (folder / "out.tsv").write_text("previous table\n")
    return folder


def unchanged(folder: Path) -> bool:
    return (sorted(os.listdir(folder)) == ["out.tsv", "out.vcf"]
            and (folder / "out.vcf").read_text() == "previous result\n"
            and (folder / "out.tsv").read_text() == "previous table\n")


def test_success_replaces_atomically(many, reference, toy_model, outdir):
    assert score(many, reference, toy_model, outdir / "out.vcf", "--tsv", outdir / "out.tsv") == 0
    assert sorted(os.listdir(outdir)) == ["out.tsv", "out.vcf"]  # no temporary file left
    assert sum(1 for l in (outdir / "out.vcf").read_text().splitlines() if not l.startswith("#")) == 3000


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt()])
def test_crash_or_interrupt_mid_run_leaves_previous_output(many, reference, toy_model, outdir, monkeypatch, exc):
    calls = []
    real = pipeline.Scorer._triage

    def triage(self, chunk):  # once per chunk, whether its records are annotated or written through
        calls.append(1)
        if len(calls) == 5:  # after four chunks were written
            raise exc
        return real(self, chunk)

    monkeypatch.setattr(pipeline.Scorer, "_triage", triage)
    if isinstance(exc, KeyboardInterrupt):
        assert score(many, reference, toy_model, outdir / "out.vcf", "--tsv", outdir / "out.tsv",
                     "--chunk-size", 500) == 130
    else:
        with pytest.raises(RuntimeError, match="boom"):
            score(many, reference, toy_model, outdir / "out.vcf", "--tsv", outdir / "out.tsv", "--chunk-size", 500)
    assert len(calls) == 5
    assert unchanged(outdir)


def _interruptible() -> None:
    """In the child: Ctrl-C and a hang-up handled as at a terminal even when the suite runs as a background job or
    under nohup (a shell starts background jobs with SIGINT ignored, nohup ignores SIGHUP; the child would inherit
    that, and varxpress deliberately keeps an ignored SIGHUP ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def _big_vcf(tmp_path, many, copies: int) -> Path:
    """``many``'s records ``copies`` times over, under its header."""
    big = tmp_path / "big.vcf"
    text = many.read_text()
    header = "".join(l + "\n" for l in text.splitlines() if l.startswith("#"))
    body = "".join(l + "\n" for l in text.splitlines() if not l.startswith("#"))
    big.write_text(header + body * copies)
    return big


def _scoring_in_a_subprocess(tmp_path, reference, toy_model, many) -> tuple[subprocess.Popen, Path]:
    """A long `varxpress score` run in a child process, returned once its partial output is being written."""
    big = _big_vcf(tmp_path, many, 20)  # 60,000 records: many seconds of full recomputation
    out = tmp_path / "out" / "scored.vcf.gz"
    out.parent.mkdir()
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen(
        [sys.executable, "-m", "varxpress", "score", str(big), "--fasta", str(reference["fasta"]), "--tss",
         str(reference["tss"]), "--model", str(toy_model), "--out", str(out), "--no-fast-path", "--chunk-size", "200",
         "--batch-size", "64", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO, preexec_fn=_interruptible)
    deadline = time.monotonic() + 120
    while not any(n.endswith(".partial.vcf.gz") for n in os.listdir(out.parent)):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the temporary output never appeared"
        time.sleep(0.05)
    time.sleep(0.5)  # scoring is under way
    assert proc.poll() is None, "finished before it could be interrupted: make the input bigger"
    return proc, out


@pytest.mark.parametrize("sig, status, message", [(signal.SIGINT, 130, "interrupted"),
                                                  (signal.SIGTERM, 143, "terminated (SIGTERM)"),
                                                  (signal.SIGHUP, 129, "terminated (SIGHUP)")])
def test_ctrl_c_or_sigterm_in_a_subprocess_leaves_no_output(tmp_path, reference, toy_model, many, sig, status,
                                                            message):
    """SIGTERM is what schedulers (SLURM) and `kill` send: handled like Ctrl-C, with its own exit status. SIGHUP (a
    closed terminal or ssh session) once left full-size partial files until a later run swept them."""
    proc, out = _scoring_in_a_subprocess(tmp_path, reference, toy_model, many)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == status, err.decode()
    assert message in err.decode() and "Traceback" not in err.decode()
    assert os.listdir(out.parent) == []


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc to see the workers start")
@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_to_the_whole_group_while_workers_start_ends_the_run(tmp_path, reference, toy_model, many, sig,
                                                                       status):
    """Ctrl-C and a scheduler's cancel reach every process of the job. A worker killed while reading its start-up
    state once left `score` blocked for ever writing that state (only kill -9 ended it), with a traceback from the
    worker; the signal is sent the moment the first worker process exists. The bundled network, whose start-up
    state (about 1 MB) is more than a pipe holds, is the one that blocked."""
    out = tmp_path / "out" / "scored.vcf.gz"
    out.parent.mkdir()
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen(
        [sys.executable, "-m", "varxpress", "score", str(_big_vcf(tmp_path, many, 5)), "--fasta",
         str(reference["fasta"]), "--tss", str(reference["tss"]), "--model", "human", "--out", str(out),
         "--threads", "2", "--chunk-size", "200", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO, preexec_fn=_interruptible,
        start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not _workers(proc.pid):  # the first worker is starting (see test_workers_end_when_score_is_killed)
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no worker process ever started"
            time.sleep(0.002)
        os.killpg(proc.pid, sig)
        _, err = proc.communicate(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # a hung run and its workers
    assert proc.returncode == status, err.decode()
    assert "Traceback" not in err.decode() and "no output was left half-written" in err.decode()
    assert os.listdir(out.parent) == []


def test_partials_of_a_killed_run_are_removed_by_the_next_run(tmp_path, reference, toy_model, many):
    """kill -9 cannot be handled: its partial files stay until a later run of the same output succeeds."""
    proc, out = _scoring_in_a_subprocess(tmp_path, reference, toy_model, many)
    proc.kill()
    proc.communicate(timeout=120)
    left = os.listdir(out.parent)
    assert left and all(n.startswith(f".{out.name}.{proc.pid}-") for n in left)
    other = out.parent / ".other.vcf.gz.12345678.partial.vcf.gz"  # not this output's: kept
    other.write_text("x")
    assert score(many, reference, toy_model, out) == 0
    assert sorted(os.listdir(out.parent)) == sorted([other.name, out.name])  # (unsorted input: no index)


def test_read_only_output_folder_is_a_clear_error(many, reference, toy_model, outdir, monkeypatch, caplog):
    # root ignores folder modes, so the refusal of a read-only folder is simulated at the system call
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    assert score(many, reference, toy_model, outdir / "out.vcf", "--tsv", outdir / "out.tsv") == 1
    assert f"cannot write {outdir / 'out.vcf'}: Read-only file system (is {outdir} writable?)" in caplog.text
    assert unchanged(outdir)


@pytest.mark.parametrize("name, tsv", [("out.vcf", None), ("out.vcf.gz", None), ("out.bcf", None),
                                       ("out.vcf", "out.tsv"), ("out.vcf.gz", "out.tsv.gz")])
def test_full_disk_under_htslib_is_a_clear_error(many, reference, toy_model, tmp_path, caplog, name, tsv):
    """A real failing write system call: a file-size limit makes write() fail (EFBIG) like a full disk (ENOSPC).

    cyvcf2 ignores htslib's write errors, so without the read-back check this run would succeed with a short file.
    With a TSV on the same full disk too, the first failure is the one message (no traceback of the second).
    """
    folder = tmp_path / "out"
    folder.mkdir()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (10_000, hard))
    try:
        status = score(many, reference, toy_model, folder / name, *(["--tsv", folder / tsv] if tsv else []))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old)
    assert status == 1
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "disk full" in errors[0]
    assert errors[0].startswith(f"cannot write {folder / name}" if not tsv else f"cannot write {folder}{os.sep}")
    assert os.listdir(folder) == []


@pytest.mark.parametrize("name, suffix", [("out.vcf.gz", ".tbi"), ("OUT.VCF.GZ", ".tbi"), ("out.bcf", ".csi")])
def test_an_index_that_does_not_fit_fails_the_run_instead_of_blaming_the_sort(many, reference, toy_model, outdir,
                                                                                monkeypatch, caplog, name, suffix):
    """The file fits but its index does not: the run fails (exit 1, the earlier output kept), naming the index and
    the full disk, rather than ending 0 with an unindexed file and advice to sort a sorted input."""
    import pysam

    def no_room(*args, **kwargs):
        raise OSError("building of index failed")  # what htslib reports, whatever the cause

    monkeypatch.setattr(pysam, "tabix_index", no_room)
    monkeypatch.setattr(writers.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 1, "", "failed"))
    monkeypatch.setattr(writers.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10 << 30, 10 << 30, 4096))
    (outdir / name).write_text("an earlier output")
    assert score(many, reference, toy_model, outdir / name) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors == [f"cannot write {outdir / name}{suffix}: no space left on the device (4 kB free)"]
    assert (outdir / name).read_text() == "an earlier output"
    assert sorted(os.listdir(outdir)) == sorted(["out.tsv", "out.vcf", name])  # no partial file, no index
    assert "is the input sorted" not in caplog.text


def test_an_index_without_a_free_inode_fails_the_run_too(many, reference, toy_model, outdir, monkeypatch, caplog):
    """Room for bytes but not for one more file (an inode quota, a small tmpfs): the same failure, saying why."""
    import pysam

    def no_inode(*args, **kwargs):
        raise OSError("building of index failed")

    class Full:  # plenty of bytes (shutil.disk_usage reads the same call), no inode
        f_files, f_favail, f_frsize, f_blocks, f_bfree, f_bavail = 1000, 0, 4096, 1 << 20, 1 << 20, 1 << 20

    monkeypatch.setattr(pysam, "tabix_index", no_inode)
    monkeypatch.setattr(writers.os, "statvfs", lambda folder: Full())
    assert score(many, reference, toy_model, outdir / "x.vcf.gz") == 1
    assert f"cannot write {outdir / 'x.vcf.gz'}.tbi: no space left on the device (no free inodes)" in caplog.text
    assert unchanged(outdir)


def test_full_disk_while_writing_the_tsv_is_a_clear_error(many, reference, toy_model, outdir, monkeypatch, caplog):
    class FullDisk:
        def __init__(self, fh):
            self.fh, self.written = fh, 0

        def write(self, text):
            self.written += len(text)
            if self.written > 20_000:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.fh.write(text)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self.fh.__exit__(*exc)

    monkeypatch.setattr(writers, "open", lambda *a, **k: FullDisk(open(*a, **k)), raising=False)
    assert score(many, reference, toy_model, outdir / "out.vcf", "--tsv", outdir / "out.tsv") == 1
    assert f"cannot write {outdir / 'out.tsv'}: No space left on device" in caplog.text
    assert unchanged(outdir)


# -- model files ------------------------------------------------------------------------------------------------------


def _edit_model(src: Path, dest: Path, key: str, **changes) -> Path:
    import json

    if src != dest:
        shutil.copy(src, dest)
    with h5py.File(dest, "r+") as h5:
        d = json.loads(h5.attrs[key])
        d.update(changes)
        h5.attrs[key] = json.dumps(d)
    return dest


def _bad_models(toy_model: Path, folder: Path) -> dict[str, tuple[Path, str]]:
    garbage = folder / "garbage.vxm.h5"
    garbage.write_bytes(b"not a model\n" * 10)
    truncated = folder / "truncated.vxm.h5"
    truncated.write_bytes(toy_model.read_bytes()[:3000])
    keras_like = folder / "keras.h5"
    with h5py.File(keras_like, "w") as h5:
        h5.attrs["keras_version"] = "2.0.5"
    return {
        "missing": (folder / "absent.vxm.h5", r"no such file: .*absent\.vxm\.h5"),
        "garbage": (garbage, r"garbage\.vxm\.h5 is not an HDF5 file"),
        "truncated": (truncated, r"cannot read model file .*truncated\.vxm\.h5: .*truncated file.*the file is damaged"),
        "keras": (keras_like, r"keras\.h5 is a Keras model file, not a varxpress model"),
        "wrong_window": (_edit_model(toy_model, folder / "window.vxm.h5", "metadata", upstream=25),
                         r"window\.vxm\.h5: the metadata window \(upstream 25, downstream 10\) does not match the "
                         r"network input"),
        "wrong_input_shape": (_edit_model(toy_model, folder / "shape.vxm.h5", "hparams", upstream=25),
                              r"shape\.vxm\.h5: the metadata window \(upstream 20, downstream 10\) does not match the "
                              r"network input \(upstream 25, downstream 10, length 35\)"),
        "wrong_weights": (_edit_model(_edit_model(toy_model, folder / "w.vxm.h5", "hparams", upstream=26),
                                      folder / "w.vxm.h5", "metadata", upstream=26),
                          r"w\.vxm\.h5: weight dense_1/kernel has shape .* but the architecture"),
    }


@pytest.mark.parametrize("kind", ["missing", "garbage", "truncated", "keras", "wrong_window", "wrong_input_shape",
                                  "wrong_weights"])
def test_bad_model_is_a_clear_error_before_any_scoring(kind, toy_model, reference, tmp_path, outdir, monkeypatch,
                                                       caplog, capsys):
    model, message = _bad_models(toy_model, tmp_path)[kind]

    def never(*args, **kwargs):
        raise AssertionError("scoring started with a bad model")

    monkeypatch.setattr(engine.Engine, "score", never)
    monkeypatch.setattr(engine.Engine, "__init__", never)
    vcf = CORPUS / "mnvs.vcf"
    if kind == "missing":  # refused while parsing the command line: usage error
        with pytest.raises(SystemExit) as exit_info:
            score(vcf, reference, model, outdir / "out.vcf")
        assert exit_info.value.code == 2
        assert re.search(message, capsys.readouterr().err)
    else:
        assert score(vcf, reference, model, outdir / "out.vcf") == 1
        assert re.search(message, caplog.text), caplog.text
    assert unchanged(outdir)


def test_unreadable_model_is_a_clear_error(toy_model, reference, outdir, monkeypatch, caplog):
    real = h5py.File

    def denied(path, *args, **kwargs):
        if str(path) == str(toy_model):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(h5py, "File", denied)
    assert score(CORPUS / "mnvs.vcf", reference, toy_model, outdir / "out.vcf") == 1
    assert f"cannot read model file {toy_model}" in caplog.text and "Permission denied" in caplog.text
    assert unchanged(outdir)


# -- standard input: read once into a temporary file, then checked like a file ---------------------------------------


@pytest.fixture
def stdin_from():
    """Point file descriptor 0 (what htslib and varxpress read for ``-``) at a file for one test."""
    saved = os.dup(0)

    def use(path: Path) -> None:
        fd = os.open(path, os.O_RDONLY)
        os.dup2(fd, 0)
        os.close(fd)

    yield use
    os.dup2(saved, 0)
    os.close(saved)


@pytest.mark.parametrize("case", ["blank_line_between_records.vcf", "bad_format_integer.vcf"])
def test_stdin_errors_name_the_line_as_for_a_file(case, stdin_from, reference, toy_model, outdir, caplog):
    assert score(CORPUS / case, reference, toy_model, outdir / "out.vcf") == 1
    from_file = caplog.text.replace(str(CORPUS / case), "<stdin>")
    caplog.clear()
    stdin_from(CORPUS / case)
    assert score("-", reference, toy_model, outdir / "out.vcf") == 1
    assert re.search(r"<stdin>(:\d+|: line \d+): ", caplog.text) and caplog.text == from_file
    assert unchanged(outdir)


def test_stdin_with_an_undeclared_tag_is_scored_as_the_file_is(stdin_from, reference, toy_model, tmp_path):
    vcf = CORPUS / "undeclared_info_field.vcf"
    assert score(vcf, reference, toy_model, tmp_path / "file.vcf") == 0
    stdin_from(vcf)
    assert score("-", reference, toy_model, tmp_path / "stdin.vcf") == 0
    def body(path: Path) -> list[str]:
        return [x for x in path.read_text().splitlines() if not x.startswith("##varxpress_command")]

    assert body(tmp_path / "stdin.vcf") == body(tmp_path / "file.vcf")


def test_a_signal_during_the_keras_import_is_delivered_when_it_ends():
    """TensorFlow's C++ start-up prints and drops an exception that a signal handler raises inside it (a SIGTERM
    during `score --no-fast-path`'s first Keras import once let the run finish with status 0): the import holds
    SIGINT and SIGTERM and delivers them, to their own handlers, when it is done."""
    from varxpress.errors import Terminated
    from varxpress.lazy_keras import held_interrupts

    def raising(signum, frame):
        raise Terminated(signum)

    old_term, old_int = signal.signal(signal.SIGTERM, raising), signal.signal(signal.SIGINT, signal.SIG_IGN)
    steps = []
    try:
        with pytest.raises(Terminated):
            with held_interrupts():
                os.kill(os.getpid(), signal.SIGTERM)
                os.kill(os.getpid(), signal.SIGTERM)  # twice: delivered once
                os.kill(os.getpid(), signal.SIGINT)  # ignored before: still ignored
                time.sleep(0.05)
                steps.append("the block ran to its end")
        assert steps == ["the block ran to its end"]
        assert signal.getsignal(signal.SIGTERM) is raising and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        with held_interrupts():  # nothing arrived: nothing raised
            steps.append("again")
    finally:
        signal.signal(signal.SIGTERM, old_term)
        signal.signal(signal.SIGINT, old_int)


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def _workers(pid: int) -> list[int]:
    """The spawned multiprocessing workers among ``pid``'s children."""
    found = []
    for child in _children(pid):
        with contextlib.suppress(OSError):
            if "spawn_main" in Path(f"/proc/{child}/cmdline").read_text():
                found.append(child)
    return found


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc to find the worker processes")
def test_workers_end_when_score_is_killed(tmp_path, reference, toy_model, many, monkeypatch):
    """kill -9 gives `score` no chance to stop its workers: they notice their parent is gone and exit. Nor can it
    remove the scorer file it gave them: the next pool made on the machine does."""
    import tempfile

    from varxpress.models import fastpath
    from varxpress.models.network import ExpressionModel

    big = _big_vcf(tmp_path, many, 40)
    env = dict(os.environ, PYTHONPATH=str(REPO), TMPDIR=str(tmp_path))
    proc = subprocess.Popen(
        [sys.executable, "-m", "varxpress", "score", str(big), "--fasta", str(reference["fasta"]), "--tss",
         str(reference["tss"]), "--model", str(toy_model), "--out", str(tmp_path / "o.vcf.gz"), "--threads", "2",
         "--chunk-size", "100", "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=REPO)
    deadline = time.monotonic() + 120
    workers: list[int] = []
    while len(workers) < 2:  # the spawned workers (and multiprocessing's resource tracker)
        assert proc.poll() is None, "finished before its workers could be seen: make the input bigger"
        assert time.monotonic() < deadline, "the worker processes never appeared"
        time.sleep(0.1)
        workers = _workers(proc.pid)
    proc.kill()
    proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while any(os.path.exists(f"/proc/{w}") and "spawn_main" in Path(f"/proc/{w}/cmdline").read_text()
              for w in workers):
        assert time.monotonic() < deadline, f"workers {workers} outlived the killed `score`"
        time.sleep(0.2)
    left = [p.name for p in tmp_path.glob("varxpress-scorer-*.pickle")]
    assert left == [p.name for p in tmp_path.glob(f"varxpress-scorer-{proc.pid}-*.pickle")] and len(left) == 1
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    pool = fastpath.ScoringPool(fastpath.LocalScorer(ExpressionModel.load(toy_model)), threads=2)
    try:
        assert [p.name for p in tmp_path.glob("varxpress-scorer-*.pickle")] == [Path(pool._state).name]
    finally:
        pool.close()
    assert not list(tmp_path.glob("varxpress-scorer-*.pickle"))
