"""Shard planning, gathering and reporting for the scatter-gather workflow (``workflow/Snakefile``).

A *shard* is an ordered list of regions of the input VCF; ``varxpress score --regions SHARD.bed`` scores the records
whose POS lies in them. The planner guarantees that the shards, taken in order, hold **every record of the input
exactly once and in input order**, so concatenating the scored shards gives the same file as one unsharded run:

* every contig that has records (as listed by the VCF's index, in the order the file holds them) is covered from
  position 0 to its end (``CONTIG_END``), whether or not it is in the FASTA or holds a promoter window (records
  there are written unscored: as read outside every window, or with ``VXP_SKIP=unknown_contig``; docs/output.md);
* a contig is only cut at the start of a promoter window, where the bases of (merged) windows in the current shard
  would pass ``shard_size``; stretches without a window cost nothing and ride along with the shard before them (or
  the first shard), so a window-less contig (or one absent from the FASTA) never gets a shard of its own.

Regions are 0-based half-open ``(chrom, start, end)`` with VCF contig names; a record belongs to the region that
holds its POS (``start <= POS - 1 < end``), which is how ``varxpress score --regions`` selects records.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from varxpress.errors import VarxpressError, VcfError
from varxpress.io.outputs import atomic_path
from varxpress.io.genome import Genome, read_contig_map
from varxpress.io.regions import parse_region  # the same parser as `varxpress score --region`
from varxpress.models.registry import load_tss_set

log = logging.getLogger(__name__)

#: End of the last region of a contig: past any contig, so a record beyond a declared contig length is not lost
#: (htslib positions are 64-bit: a POS of 2^31 or more must still fall inside).
CONTIG_END = 2**62
#: Default shard size: bases of (merged) promoter windows per shard (~125 shards for the human genome).
DEFAULT_SHARD_SIZE = 2_000_000
#: Window geometry used for planning when the model file cannot be read (Xpresso: 7000 up, 3500 down).
DEFAULT_UPSTREAM, DEFAULT_DOWNSTREAM = 7000, 3500
#: Counts of ``varxpress score --stats`` that add up over shards.
SUMMED = ("records_in", "records_out", "alleles", "alleles_scored", "scores", "scores_fast", "genes_predicted")

Region = tuple[str, int, int]


class ShardPlanError(VarxpressError, ValueError):
    """A shard plan cannot be made from the inputs or the region list given."""


class GatherError(VarxpressError, RuntimeError):
    """Concatenating, indexing or checking the scored shards failed."""


@dataclass(frozen=True)
class Shard:
    """One ``varxpress score`` job.

    Attributes:
        name: file stem of the shard's outputs (``shard0001``); shards are numbered in output order.
        regions: ``(chrom, start, end)``, 0-based half-open, VCF contig names, in output order.
        span: bases of promoter window the shard holds (its expected cost; 0 for window-less shards).
    """

    name: str
    regions: tuple[Region, ...]
    span: int = 0

    def bed(self) -> str:
        """The regions as BED lines (what ``varxpress score --regions`` reads)."""
        return "".join(f"{c}\t{s}\t{e}\n" for c, s, e in self.regions)

    def label(self) -> str:
        """``chr1:1-5000000,chr2`` style summary (1-based inclusive; whole contigs by name)."""
        return ",".join(c if (s, e) == (0, CONTIG_END) else f"{c}:{s + 1}-{'end' if e == CONTIG_END else e}"
                        for c, s, e in self.regions)


def merge_intervals(spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, merged (overlapping or touching) 0-based half-open intervals, clipped below at 0."""
    out: list[list[int]] = []
    for s, e in sorted((max(s, 0), e) for s, e in spans if e > max(s, 0)):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


def plan_shards(contigs: Sequence[str], windows: Mapping[str, Sequence[tuple[int, int]]],
                shard_size: int = DEFAULT_SHARD_SIZE) -> list[Shard]:
    """Cut ``contigs`` (in output order) into shards of at most ``shard_size`` bases of promoter window.

    Args:
        contigs: VCF contigs that have records, in the order the output should have them.
        windows: contig -> promoter windows ``(start, end)`` 0-based half-open (any order, may overlap).
        shard_size: bases of merged windows per shard; a merged window stretch longer than this is a shard alone.

    Returns:
        Shards whose regions tile ``[0, CONTIG_END)`` of every contig exactly once, in order. A VCF without
        records gives one shard without regions (which ``varxpress score`` reads as "everything").
    """
    if shard_size < 1:
        raise ShardPlanError(f"shard size must be at least 1 base, not {shard_size}")
    if len(set(contigs)) != len(contigs):
        raise ShardPlanError(f"contig listed twice in {list(contigs)}")
    shards: list[Shard] = []
    regions: list[Region] = []
    span = 0

    def close() -> None:
        nonlocal regions, span
        shards.append(Shard(f"shard{len(shards) + 1:04d}", tuple(regions), span))
        regions, span = [], 0

    for contig in contigs:
        start = 0  # start of the open region of this contig
        for ws, we in merge_intervals(windows.get(contig, ())):
            if span > 0 and span + (we - ws) > shard_size:
                if ws > start:
                    regions.append((contig, start, ws))
                close()
                start = ws
            span += we - ws
        regions.append((contig, start, CONTIG_END))
    if regions or not shards:
        close()
    return shards


def read_region_list(path: str | os.PathLike, contigs: Sequence[str]) -> list[Shard]:
    """Shards from a user's list: one shard per line, or per name where a BED line has a 4th column.

    Lines are BED (``chrom start end [shard]``, 0-based) or ``CHROM[:START-END]`` (1-based inclusive). Shards are
    put in output order (``contigs`` order, then position); regions must not overlap and one shard's regions must
    not interleave with another's (the gathered file would be out of order). Records outside every region are left
    out of the output.
    """
    order = {c: i for i, c in enumerate(contigs)}
    groups: dict[str, list[Region]] = {}
    with open(path) as fh:
        for n, line in enumerate(fh, 1):
            line = line.strip()
            if not line or line.startswith(("#", "track", "browser")):
                continue
            fields = line.split("\t") if "\t" in line else line.split()
            try:
                if len(fields) >= 3:
                    region = (fields[0], int(fields[1]), int(fields[2]))
                    name = fields[3] if len(fields) >= 4 else f"line{n}"
                else:
                    region, name = parse_region(fields[0]), f"line{n}"
            except Exception as exc:  # argparse.ArgumentTypeError or ValueError
                raise ShardPlanError(f"{path}:{n}: not a BED line or CHROM:START-END: {line!r}") from exc
            if region[1] < 0 or region[2] <= region[1]:
                raise ShardPlanError(f"{path}:{n}: empty or negative region {line!r}")
            groups.setdefault(name, []).append(region)
    if not groups:
        raise ShardPlanError(f"{path}: no regions")
    missing = sorted({c for rs in groups.values() for c, _, _ in rs if c not in order})
    if missing:
        log.warning("%s: contigs %s have no records in the VCF (or are not in its index)", path, ", ".join(missing))

    def key(r: Region) -> tuple[int, int]:
        return order.get(r[0], len(order)), r[1]

    ordered = sorted((sorted(rs, key=key) for rs in groups.values()), key=lambda rs: key(rs[0]))
    flat = [r for rs in ordered for r in rs]
    for a, b in zip(flat, flat[1:]):
        if key(b) < key(a) or (a[0] == b[0] and b[1] < a[2]):
            raise ShardPlanError(f"{path}: region {a[0]}:{a[1] + 1}-{a[2]} overlaps or interleaves with "
                                 f"{b[0]}:{b[1] + 1}-{b[2]} of another shard; a record must belong to one shard")
    return [Shard(f"shard{i:04d}", tuple(rs), 0) for i, rs in enumerate(ordered, 1)]


# -- inputs ----------------------------------------------------------------------------------------------------


def find_index(vcf: str | os.PathLike) -> str | None:
    """The ``.tbi`` or ``.csi`` beside ``vcf``, or None."""
    for suffix in (".tbi", ".csi"):
        if os.path.exists(f"{vcf}{suffix}"):
            return f"{vcf}{suffix}"
    return None


def vcf_contigs(vcf: str | os.PathLike) -> list[str]:
    """Contigs of an indexed VCF.gz/BCF that hold records, in the order the file holds them (a BCF's ``.csi``
    lists them in header order, which need not be the file's).

    Contigs absent from the header are listed too where the index names them (tabix-indexed VCF.gz).
    """
    import pysam

    if find_index(vcf) is None:
        raise VcfError(f"{vcf} has no index (.tbi/.csi): bgzip and index it (`bgzip -c in.vcf > in.vcf.gz && "
                       f"tabix -p vcf in.vcf.gz`, or `bcftools index` for BCF)")
    try:
        with pysam.VariantFile(str(vcf)) as fh:
            if fh.index is None:
                raise VcfError(f"{vcf}: cannot read its index")
            first: dict[str, int] = {}  # contig -> file offset just past its first record
            for name in fh.index.keys():
                if next(fh.fetch(name), None) is not None:
                    first[name] = fh.tell()
            return sorted(first, key=first.__getitem__)  # a sorted file holds each contig in one run of records
    except (OSError, ValueError) as exc:
        raise VcfError(f"{vcf}: not a readable indexed VCF/BCF ({exc})") from exc


def model_window(model: str | os.PathLike | None) -> tuple[int, int]:
    """``(upstream, downstream)`` of a model file's metadata, read with h5py (no TensorFlow); Xpresso's if unknown."""
    if model:
        try:
            import h5py

            with h5py.File(model, "r") as h5:
                meta = json.loads(h5.attrs["metadata"])
            return int(meta["upstream"]), int(meta["downstream"])
        except (OSError, KeyError, ValueError, TypeError) as exc:
            log.debug("window of %s unknown (%s); planning with %d/%d", model, exc, DEFAULT_UPSTREAM,
                      DEFAULT_DOWNSTREAM)
    return DEFAULT_UPSTREAM, DEFAULT_DOWNSTREAM


def promoter_windows(contigs: Sequence[str], fasta: str, tss: str | None, tss_offset: int | None,
                     tss_format: str = "auto", model: str | None = None,
                     contig_map: str | None = None) -> dict[str, list[tuple[int, int]]]:
    """VCF contig -> merged promoter windows ``(start, end)`` (0-based half-open) of the genes on it.

    Names are matched through the FASTA (``chr1`` ↔ ``1``, ``--contig-map``) like ``varxpress score`` does; the
    window is ``upstream + downstream`` bases around each TSS on either strand (a superset of the model's window).
    """
    model_path, _, genes = load_tss_set(model, tss, tss_offset, tss_format)
    up, down = model_window(model_path)
    reach = max(up, down)
    with Genome(fasta, contig_map=read_contig_map(contig_map) if contig_map else None) as genome:
        by_fasta: dict[str, list[tuple[int, int]]] = {}
        for t in genes:
            name = genome.resolve(t.chrom)
            if name is not None:
                by_fasta.setdefault(name, []).append((t.pos0 - reach, t.pos0 + reach + 1))
        out = {}
        for contig in contigs:
            name = genome.resolve(contig)
            out[contig] = merge_intervals(by_fasta.get(name, [])) if name is not None else []
    return out


def make_plan(vcf: str, fasta: str, *, tss: str | None = None, tss_offset: int | None = None,
              tss_format: str = "auto", model: str | None = None, contig_map: str | None = None,
              shard_size: int = DEFAULT_SHARD_SIZE, regions: str | None = None) -> list[Shard]:
    """Shards of an indexed VCF: tiled from the promoter windows (default) or from a region list file."""
    contigs = vcf_contigs(vcf)
    if regions:
        return read_region_list(regions, contigs)
    windows = promoter_windows(contigs, fasta, tss, tss_offset, tss_format, model, contig_map)
    return plan_shards(contigs, windows, shard_size)


def write_plan(shards: Sequence[Shard], folder: str | os.PathLike, mode: str) -> None:
    """``folder/NAME.bed`` per shard and ``folder/shards.json`` (name, regions, span; mode ``tiled``/``regions``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for shard in shards:
        (folder / f"{shard.name}.bed").write_text(shard.bed())
    plan = {"mode": mode, "shards": [{"name": s.name, "regions": s.label(), "span": s.span} for s in shards]}
    (folder / "shards.json").write_text(json.dumps(plan, indent=2) + "\n")


def read_plan(folder: str | os.PathLike) -> dict:
    """The ``shards.json`` written by :func:`write_plan`."""
    with open(Path(folder) / "shards.json") as fh:
        return json.load(fh)


# -- gather and report ----------------------------------------------------------------------------------------


#: how to get the tools the gather needs, also where a wheel installed outside the source tree has no scripts/
INSTALL_TOOLS = ("install bcftools and tabix (e.g. `apt-get install bcftools tabix`, `conda install -c bioconda "
                 "bcftools htslib`; in a checkout: scripts/install-system-deps)")


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise GatherError(f"{name} not found on PATH: {INSTALL_TOOLS}")
    return path


def _run(cmd: list[str]) -> str:
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise GatherError(f"`{' '.join(cmd)}` failed ({res.returncode}): {res.stderr.strip()}")
    return res.stdout


def count_records(vcf: str | os.PathLike) -> int | None:
    """Number of records of an indexed VCF.gz/BCF, from its index (``bcftools index -n``); None if unknown."""
    if find_index(vcf) is None:
        return None
    try:
        return int(_run([_tool("bcftools"), "index", "-n", str(vcf)]).strip())
    except (GatherError, ValueError):
        return None


def gather(shard_vcfs: Sequence[str], out: str, threads: int = 1) -> None:
    """Concatenate scored shards, in the order given, into bgzipped ``out`` and index it (``out.tbi``).

    ``bcftools concat`` keeps the first shard's header; in its ``##varxpress_command`` line (the command of every
    shard) the first shard's name becomes ``{shard}``.
    """
    if not shard_vcfs:
        raise GatherError("no shards to gather")
    bcftools, tabix = _tool("bcftools"), _tool("tabix")
    folder = os.path.dirname(os.path.abspath(out))
    with tempfile.TemporaryDirectory(dir=folder, prefix=".gather.") as tmp:
        listing = os.path.join(tmp, "shards.txt")
        Path(listing).write_text("".join(f"{p}\n" for p in shard_vcfs))
        header = _run([bcftools, "view", "--no-version", "-h", shard_vcfs[0]])
        first = Path(shard_vcfs[0]).name.split(".")[0]
        lines = []
        for line in header.splitlines():
            if line.startswith("##varxpress_command="):
                line = line.replace(first, "{shard}")
            lines.append(line)
        Path(tmp, "header.txt").write_text("\n".join(lines) + "\n")
        concat = os.path.join(tmp, "concat.vcf.gz")
        _run([bcftools, "concat", "--no-version", "--threads", str(threads), "-f", listing, "-Oz", "-o", concat])
        with atomic_path(out, (".tbi", ".csi")) as part:  # the file and its index replace the old ones together
            _run([bcftools, "reheader", "-h", os.path.join(tmp, "header.txt"), "-o", part, concat])
            _run([tabix, "-f", "-p", "vcf", part])


def aggregate_stats(stats: Sequence[Mapping]) -> dict:
    """Sum the ``--stats`` JSONs of the shards: counts added, ``skipped``/``flags`` added per key.

    ``genes_predicted`` counts a gene once per shard that predicted it.
    """
    total: dict = {k: 0 for k in SUMMED}
    total["skipped"], total["flags"] = {}, {}
    for s in stats:
        for k in SUMMED:
            total[k] += int(s.get(k, 0))
        for group in ("skipped", "flags"):
            for reason, n in s.get(group, {}).items():
                total[group][reason] = total[group].get(reason, 0) + int(n)
    total["skipped"] = dict(sorted(total["skipped"].items()))
    total["flags"] = dict(sorted(total["flags"].items()))
    return total


def write_report(plan_folder: str | os.PathLike, stats_paths: Sequence[str], input_vcf: str, output_vcf: str,
                 report_path: str) -> None:
    """:func:`build_report` written to ``report_path`` as JSON. A gathered output that fails the report's record
    counts is removed with its index before the error goes on: a failed workflow leaves no file that looks like a
    finished result."""
    try:
        report = build_report(plan_folder, stats_paths, input_vcf, output_vcf)
    except GatherError:
        for path in (output_vcf, output_vcf + ".tbi"):
            if os.path.exists(path):
                os.unlink(path)
        raise
    with open(report_path, "w") as fh:
        json.dump(report, fh, indent=2)
        fh.write("\n")


def build_report(plan_folder: str | os.PathLike, stats_paths: Sequence[str], input_vcf: str,
                 output_vcf: str) -> dict:
    """The final report: summed counts, per-shard counts and the record-count checks.

    Raises:
        GatherError: the gathered file does not hold every scored record, or (for a tiled plan) the shards did
            not hold every record of the input.
    """
    plan = read_plan(plan_folder)
    per_shard = []
    for entry, path in zip(plan["shards"], stats_paths):
        with open(path) as fh:
            per_shard.append({**entry, **json.load(fh)})
    report = {"input": str(input_vcf), "output": str(output_vcf), "mode": plan["mode"], "n_shards": len(per_shard),
              **aggregate_stats(per_shard)}
    report["input_records"] = count_records(input_vcf)
    report["output_records"] = count_records(output_vcf)
    report["shards"] = per_shard
    if report["output_records"] is not None and report["output_records"] != report["records_out"]:
        raise GatherError(f"{output_vcf} holds {report['output_records']} records but the shards wrote "
                          f"{report['records_out']}")
    if plan["mode"] == "tiled" and report["input_records"] is not None \
            and report["input_records"] != report["records_in"]:
        raise GatherError(f"the shards read {report['records_in']} records but {input_vcf} has "
                          f"{report['input_records']}: records on contigs its index does not name were missed, or "
                          f"the file is damaged (check it with `bcftools view {input_vcf}`)")
    return report
