"""Longer fuzzing run of the VCF-facing code (the suite runs the same properties on a few dozen examples).

Usage, from the repository root::

    .venv/bin/python benchmarks/fuzz_vcf.py --examples 2000 [--seed 1] [--bytes 20000]

Two targets, both driven by hypothesis (no extra dependency):

1. ``score``: random genomes (lower case, IUPAC and N bases), random TSS sets and random VCF records (multi-allelic,
   ``*``, symbolic, breakend, IUPAC, lower case, off-contig positions, undeclared contigs/FILTERs/INFO tags, aliases
   ``chr1``/``1``, CRLF, gzip), a quarter of them with one malformed line, through ``varxpress score``
   (properties of tests/test_properties.py: exit 0 with every record out in order and byte-identical reruns, or exit
   1 with an error naming the broken line and no output; any other exception is a finding).
2. ``scan``: arbitrary bytes, with and without a valid header, through the line scanner
   (:func:`varxpress.io.variants.scan_vcf_text`): it returns or raises :class:`~varxpress.errors.VcfError`; when it
   accepts a file, htslib (cyvcf2) must read exactly as many records without an error.

A finding is printed as hypothesis's minimal failing example and the script exits 1. Runs in a child process
per target would survive an htslib crash (segfault); run with ``--isolate`` for that (slower).
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def fuzz_score(examples: int, seed: int) -> None:
    from hypothesis import HealthCheck, given, seed as hseed, settings

    from tests.test_properties import UP, DOWN, cases, check_case
    from tests.toy import toy_model_file

    model = toy_model_file(Path(tempfile.mkdtemp(prefix="vxp-fuzz-")), UP, DOWN)

    @hseed(seed)
    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=cases())
    def target(case):
        check_case(case, model)

    target()


def fuzz_scan(examples: int, seed: int) -> None:
    import cyvcf2
    from hypothesis import HealthCheck, given, seed as hseed, settings
    from hypothesis import strategies as st

    from varxpress.errors import VcfError
    from varxpress.io.variants import scan_vcf_text

    folder = Path(tempfile.mkdtemp(prefix="vxp-fuzz-scan-"))
    header = (b"##fileformat=VCFv4.2\n##contig=<ID=chr1,length=100>\n"
              b'##INFO=<ID=DP,Number=1,Type=Integer,Description="d">\n'
              b'##FORMAT=<ID=GT,Number=1,Type=String,Description="g">\n'
              b"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\n")
    line = st.lists(st.sampled_from([b"chr1", b"5", b"A", b"G", b".", b"DP=3", b"GT", b"0/1", b"1e3", b"x", b"*",
                                     b"<DEL>", b"\t", b" ", b";", b",", b"=", b"", b"\r"]), max_size=14).map(b"".join)

    @hseed(seed)
    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(body=st.one_of(st.binary(max_size=300), st.lists(line, max_size=6).map(lambda ls: b"\n".join(ls) + b"\n")),
           with_header=st.booleans())
    def target(body, with_header):
        path = folder / "x.vcf"
        path.write_bytes((header if with_header else b"") + body)
        try:
            scan = scan_vcf_text(str(path))
        except VcfError:
            return
        if scan is None:
            return
        # the scanner accepted it: htslib must read every record, exactly
        n = sum(1 for _ in cyvcf2.VCF(str(path)))
        assert n == scan.records, (n, scan)

    target()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--examples", type=int, default=2000, help="examples per target")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--target", choices=["score", "scan", "all"], default="all")
    p.add_argument("--isolate", action="store_true", help="run each target in a child process (survives crashes)")
    args = p.parse_args(argv)
    logging.disable(logging.CRITICAL)  # varxpress's expected warnings and errors would flood the terminal
    targets = ["scan", "score"] if args.target == "all" else [args.target]
    failed = False
    for target in targets:
        print(f"fuzzing {target}: {args.examples} examples, seed {args.seed}", file=sys.stderr)
        if args.isolate:
            rc = subprocess.run([sys.executable, __file__, "--target", target, "--examples", str(args.examples),
                                 "--seed", str(args.seed)]).returncode
            if rc != 0:
                print(f"{target}: child exited with status {rc}" + (" (crash)" if rc < 0 else ""), file=sys.stderr)
                failed = True
            continue
        try:
            {"score": fuzz_score, "scan": fuzz_scan}[target](args.examples, args.seed)
        except Exception as exc:  # noqa: BLE001 - report every finding
            print(f"{target}: FINDING: {type(exc).__name__}: {exc}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
