"""Generate the edge-case corpus: a tiny genome, its TSS file, one small VCF/BCF per case and ``expected.yaml``.

The files are committed; this script is kept so the corpus can be re-made (``python make_corpus.py`` from this
folder, needs ``bgzip`` and ``bcftools`` on PATH). The toy model the tests use has ``upstream=20, downstream=10``.

``expected.yaml`` holds one entry per case, in the order below:

* ``file``: the input, ``args``: extra ``varxpress score`` arguments, ``out``: the output name to write;
* ``exit``: the expected exit status (0 or 1);
* for ``exit: 0``: ``records``: ``[ID, expectation]`` per input record, in input order, where the expectation is
  ``scored`` (a ``VXP`` entry and no ``VXP_SKIP``) or the exact ``VXP_SKIP`` value; optionally ``flags``
  (``{ID: flag}`` every score of that record carries, or ``{ID: [flag, ...]}`` in ``VXP`` order), ``log``
  (a regex the log must match) and ``indexed``;
* for ``exit: 1``: ``error``: a regex the error message must match (it names the file, the line and the cause).
"""

from __future__ import annotations

import gzip
import random
import subprocess
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
rng = random.Random(20250101)


def _random(n: int) -> str:
    return "".join(rng.choice("ACGT") for _ in range(n))


# -- genome -------------------------------------------------------------------------------------------------------
CHR1 = list(_random(300))
for i in range(180, 200):  # soft-masked stretch
    CHR1[i] = CHR1[i].lower()
CHR1[200], CHR1[205], CHR1[210] = "R", "Y", "k"  # IUPAC codes (one lower case)
for i in list(range(240, 258)) + list(range(262, 275)):  # N-rich stretch around G4's TSS
    CHR1[i] = "N"
CHR1 = "".join(CHR1)
CHR2 = _random(60)
CHR3 = _random(80)  # named "3" in the FASTA: no chr prefix
CONTIGS = {"chr1": CHR1, "chr2": CHR2, "3": CHR3}
# gene_id gene_name chrom pos(1-based) strand; window = [t-20, t+10) on +, [t-10, t+20) on -
GENES = [
    ("G1", "PLUS1", "chr1", 60, "+"),    # [39, 69)
    ("G2", "MINUS1", "chr1", 120, "-"),  # [109, 139)
    ("G3", "MASKED", "chr1", 195, "+"),  # [174, 204): lower case and IUPAC bases
    ("G4", "NRICH", "chr1", 260, "-"),   # [249, 279): mostly N
    ("G5", "LEFT", "chr2", 5, "+"),      # [-16, 14): runs off the left end
    ("G6", "RIGHT", "chr2", 56, "-"),    # [45, 75): runs off the right end
    ("G7", "NOPREFIX", "3", 40, "+"),    # [19, 49)
]

SAMPLE_FORMAT = ("GT", "0/1")


def base(chrom: str, pos: int, n: int = 1) -> str:
    """Genome bases at 1-based ``pos`` (as written in the FASTA, case kept)."""
    return CONTIGS[chrom][pos - 1:pos - 1 + n]


def other(b: str) -> str:
    return {"A": "C", "C": "G", "G": "T", "T": "A"}.get(b.upper(), "A")


def header(samples=("S1",), extra=(), contigs=True, fileformat=True, chrom_line=True) -> list[str]:
    lines = ["##fileformat=VCFv4.2"] if fileformat else []
    if contigs:
        lines += [f"##contig=<ID={c},length={len(s)}>" for c, s in CONTIGS.items()]
    lines += ['##INFO=<ID=DP,Number=1,Type=Integer,Description="Total depth">',
              '##INFO=<ID=AF,Number=A,Type=Float,Description="Allele frequency">',
              '##FILTER=<ID=LowQual,Description="Low quality">',
              '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">']
    lines += list(extra)
    if chrom_line:
        lines.append("\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO"]
                               + (["FORMAT", *samples] if samples else [])))
    return lines


def rec(chrom, pos, vid, ref, alt, qual="50", filt="PASS", info=None, fmt="GT", samples=("0/1",)) -> str:
    info = info if info is not None else f"DP={10 + len(str(pos))}"
    cols = [chrom, str(pos), vid, ref, alt, qual, filt, info]
    if fmt is not None:
        cols += [fmt, *samples]
    return "\t".join(cols)


def snv(chrom, pos, vid, vcf_chrom=None, **kw) -> str:
    r = base(chrom, pos).upper()
    return rec(vcf_chrom or chrom, pos, vid, r, other(r), **kw)


CASES: list[dict] = []


def case(name: str, lines: list[str] | bytes, expect: dict, eol: str = "\n") -> None:
    path = HERE / name
    data = lines if isinstance(lines, bytes) else "".join(line + eol for line in lines).encode()
    if name.endswith(".vcf.gz") and not expect.pop("plain_gzip", False):
        path.with_suffix("").write_bytes(data)
        subprocess.run(["bgzip", "-f", str(path.with_suffix(""))], check=True)
    elif name.endswith(".gz"):
        path.write_bytes(gzip.compress(data, mtime=0))
    else:
        path.write_bytes(data)
    CASES.append({"file": name, **expect})


def ok(*records, **more) -> dict:
    return {"exit": 0, "records": [list(r) for r in records], **more}


def err(pattern: str, **more) -> dict:
    return {"exit": 1, "error": pattern, **more}


def build() -> None:
    H = header()
    # -- empty and header-only files --------------------------------------------------------------------------------
    case("empty_file.vcf", b"", err(r"empty_file\.vcf: the file is empty"))
    case("header_only.vcf", H, ok())
    case("no_records.bcf", H, ok())  # converted to BCF below
    case("missing_fileformat_line.vcf", header(fileformat=False) + [snv("chr1", 45, "a")],
         err(r"missing_fileformat_line\.vcf:1: not a VCF: the first line must be ##fileformat"))
    case("missing_chrom_header_line.vcf", header(chrom_line=False) + [snv("chr1", 45, "a")],
         err(r"missing_chrom_header_line\.vcf:9: expected the tab-separated header line #CHROM"))
    case("missing_contig_header_lines.vcf", header(contigs=False) + [snv("chr1", 45, "a"), snv("chr2", 3, "b")],
         ok(("a", "scored"), ("b", "scored"), flags={"b": "off_contig&n_rich"}, log="contigs chr1, chr2 used by records "
            "but not declared"))
    case("undeclared_info_field.vcf", H + [snv("chr1", 45, "a", info="DP=3;FOO=bar;SOMATIC"), snv("chr1", 46, "b")],
         ok(("a", "scored"), ("b", "scored"), log="INFO tags FOO used by records but not declared"))
    case("undeclared_filter.vcf", H + [snv("chr1", 45, "a", filt="q10;LowQual"), snv("chr1", 46, "b", filt="LowQual")],
         ok(("a", "scored"), ("b", "scored"), log="FILTERs q10 used by records but not declared"))
    case("undeclared_format_field.vcf", H + [snv("chr1", 45, "a", fmt="GT:XY", samples=("0/1:7",)),
                                             snv("chr1", 46, "b")],
         ok(("a", "scored"), ("b", "scored"), log="FORMAT tags XY used by records but not declared"))
    # -- alleles and genome bases -----------------------------------------------------------------------------------
    lo = lambda s: s.lower()  # noqa: E731
    case("lowercase_alleles.vcf", H + [
        rec("chr1", 45, "snv", lo(base("chr1", 45)), lo(other(base("chr1", 45)))),
        rec("chr1", 50, "ins", lo(base("chr1", 50)), lo(base("chr1", 50) + "ac")),
        rec("chr1", 115, "mnv", lo(base("chr1", 115, 2)), other(base("chr1", 115)) + lo(other(base("chr1", 116)))),
    ], ok(("snv", "scored"), ("ins", "scored"), ("mnv", "scored")))
    case("iupac_alleles.vcf", H + [
        rec("chr1", 45, "alt_iupac", base("chr1", 45), "R"),
        rec("chr1", 46, "ref_iupac", "Y", "A"),
        rec("chr1", 47, "multi_iupac", base("chr1", 47), f"M,{other(base('chr1', 47))}"),
        rec("chr1", 48, "alt_unknown", base("chr1", 48), "N"),  # N is an unknown base, not IUPAC noise: scored
        rec("chr1", 49, "ins_unknown", base("chr1", 49), base("chr1", 49) + "NN"),
        rec("chr1", 201, "ref_matches_genome_iupac", "R", "A"),
        rec("chr1", 202, "alt_iupac_ins", base("chr1", 202), base("chr1", 202) + "W"),
    ], ok(("alt_iupac", "invalid_allele"), ("ref_iupac", "ref_mismatch"), ("multi_iupac", "invalid_allele,."),
          ("alt_unknown", "scored"), ("ins_unknown", "scored"), ("ref_matches_genome_iupac", "invalid_allele"),
          ("alt_iupac_ins", "invalid_allele"), flags={"alt_unknown": "alt_n", "ins_unknown": "alt_n"}))
    case("lowercase_genome.vcf", H + [
        snv("chr1", 185, "upper_ref"),
        rec("chr1", 190, "lower_ref", base("chr1", 190), other(base("chr1", 190))),
        rec("chr1", 195, "del_in_mask", base("chr1", 195, 3).upper(), base("chr1", 195).upper()),
    ], ok(("upper_ref", "scored"), ("lower_ref", "scored"), ("del_in_mask", "scored")))
    case("iupac_genome.vcf", H + [
        snv("chr1", 199, "next_to_iupac"),
        rec("chr1", 201, "ref_acgt_at_genome_r", "A", "C"),  # R is A or G: A agrees with it, C does not
        rec("chr1", 201, "ref_c_at_genome_r", "C", "A"),
        rec("chr1", 206, "ref_y_as_genome", "Y", "C"),
    ], ok(("next_to_iupac", "scored"), ("ref_acgt_at_genome_r", "scored"), ("ref_c_at_genome_r", "ref_mismatch"),
          ("ref_y_as_genome", "invalid_allele"), flags={"ref_acgt_at_genome_r": "ref_n"},
          log="REF C of chr1:201 disagrees with the genome \\(R\\)"))
    case("ref_mismatch.vcf", H + [
        snv("chr1", 45, "fine"),
        rec("chr1", 46, "mismatch", other(base("chr1", 46)), base("chr1", 46)),
        rec("chr1", 47, "long_ref_mismatch", other(base("chr1", 47)) + base("chr1", 48), base("chr1", 47)),
    ], ok(("fine", "scored"), ("mismatch", "ref_mismatch"), ("long_ref_mismatch", "ref_mismatch"),
          log=r"ref_mismatch\.vcf: line 11: REF \w of chr1:46 disagrees with the genome"))
    CASES.append({"file": "ref_mismatch.vcf", "args": ["--on-ref-mismatch", "error"],
                  **err(r"ref_mismatch\.vcf: line 11: REF \w of chr1:46 disagrees with the genome")})
    case("n_rich_window.vcf", H + [
        rec("chr1", 250, "ref_a_at_genome_n", "A", "G"),
        rec("chr1", 251, "ref_n", "N", "A"),
        rec("chr1", 252, "alt_n", "N", "N"),
        snv("chr1", 260, "acgt_among_n"),
    ], ok(("ref_a_at_genome_n", "scored"), ("ref_n", "scored"), ("alt_n", "invalid_allele"),
          ("acgt_among_n", "scored"),  # G4's window is 22 of 30 bases N
          flags={"ref_a_at_genome_n": "n_rich&ref_n", "ref_n": "n_rich&ref_n", "acgt_among_n": "n_rich"}))
    # -- alleles at a TSS (G1's, chr1:60 +): flagged where a length change removes or rewrites the TSS base ----------
    case("alleles_at_the_tss.vcf", H + [
        rec("chr1", 57, "del_over_tss", base("chr1", 57, 7), base("chr1", 57)),  # deletes 58-63
        rec("chr1", 59, "mnv_over_tss", base("chr1", 59, 2), other(base("chr1", 59)) + other(base("chr1", 60))),
        snv("chr1", 60, "snv_at_tss"),
        rec("chr1", 60, "ins_after_tss", base("chr1", 60), base("chr1", 60) + "GA"),
        rec("chr1", 61, "del_after_tss", base("chr1", 61, 3), base("chr1", 61)),  # deletes 62-63
    ], ok(("del_over_tss", "scored"), ("mnv_over_tss", "scored"), ("snv_at_tss", "scored"),
          ("ins_after_tss", "scored"), ("del_after_tss", "scored"),
          flags={"del_over_tss": "spans_tss"}))  # a substitution at the TSS leaves the coordinates in place
    # -- contig edges -----------------------------------------------------------------------------------------------
    case("variant_at_position_1.vcf", H + [snv("chr1", 1, "chr1_first"), snv("chr2", 1, "chr2_first"),
                                            rec("chr2", 1, "del_at_1", base("chr2", 1, 2), base("chr2", 1))],
         ok(("chr1_first", "no_gene_in_window"), ("chr2_first", "scored"), ("del_at_1", "scored"),
            flags={"chr2_first": "off_contig&n_rich", "del_at_1": "off_contig&n_rich"}))
    case("variant_at_last_base.vcf", H + [snv("chr1", 300, "chr1_last"), snv("chr2", 60, "chr2_last"),
                                           rec("chr2", 60, "ins_at_end", base("chr2", 60), base("chr2", 60) + "A")],
         ok(("chr1_last", "no_gene_in_window"), ("chr2_last", "scored"), ("ins_at_end", "scored"),
            flags={"chr2_last": "off_contig&n_rich", "ins_at_end": "off_contig&n_rich"}))
    case("windows_off_both_contig_ends.vcf", H + [snv("chr2", 10, "off_left"), snv("chr2", 12, "off_left_2"),
                                                   snv("chr2", 50, "off_right")],
         ok(("off_left", "scored"), ("off_left_2", "scored"), ("off_right", "scored"),
            flags={"off_left": "off_contig&n_rich", "off_right": "off_contig&n_rich", "off_left_2": "off_contig&n_rich"}))
    case("ref_past_contig_end.vcf", H + [rec("chr2", 0, "pos_zero", "A", "G"),
                                         rec("chr2", 59, "del_past_end", base("chr2", 59, 2) + "A", base("chr2", 59)),
                                         rec("chr2", 61, "pos_past_end", "A", "G")],
         ok(("pos_zero", "ref_mismatch"), ("del_past_end", "beyond_contig_end"),
            ("pos_past_end", "beyond_contig_end")))
    # -- contig names -----------------------------------------------------------------------------------------------
    case("contig_absent_from_fasta.vcf", header(extra=["##contig=<ID=chr9,length=1000>"]) + [
        snv("chr1", 45, "known"), rec("chr9", 10, "absent", "A", "G"), rec("chrUn_x", 5, "absent2", "C", "T,G"),
    ], ok(("known", "scored"), ("absent", "unknown_contig"), ("absent2", "unknown_contig,unknown_contig")))
    case("chr_prefix_vcf_without.vcf", header(contigs=False, extra=["##contig=<ID=1,length=300>",
                                                                     "##contig=<ID=2,length=60>"]) + [
        snv("chr1", 45, "one", vcf_chrom="1"), snv("chr1", 115, "one_minus", vcf_chrom="1"),
        snv("chr2", 3, "two", vcf_chrom="2"),
    ], ok(("one", "scored"), ("one_minus", "scored"), ("two", "scored"), flags={"two": "off_contig&n_rich"}))
    case("chr_prefix_vcf_with.vcf", header(contigs=False, extra=["##contig=<ID=chr3,length=80>",
                                                                  "##contig=<ID=chrM,length=100>"]) + [
        snv("3", 30, "three", vcf_chrom="chr3"), rec("chrM", 10, "mito", "A", "G"),
    ], ok(("three", "scored"), ("mito", "unknown_contig")))
    # -- allele kinds -----------------------------------------------------------------------------------------------
    b = base
    case("multiallelic_with_star.vcf", H + [
        rec("chr1", 45, "alt_star", b("chr1", 45), f"{other(b('chr1', 45))},*"),
        rec("chr1", 46, "star_first", b("chr1", 46), f"*,{other(b('chr1', 46))},<NON_REF>"),
        rec("chr1", 47, "three_alts", b("chr1", 47), ",".join(x for x in "ACGT" if x != b("chr1", 47))),
    ], ok(("alt_star", ".,spanning_deletion"), ("star_first", "spanning_deletion,.,symbolic_allele"),
          ("three_alts", "scored")))
    case("symbolic_alleles.vcf", H + [
        rec("chr1", 45, f"sym_{i}", b("chr1", 45), s) for i, s in enumerate(("<DEL>", "<INS>", "<DUP:TANDEM>",
                                                                                "<CNV>", "<*>"))
    ], ok(*[(f"sym_{i}", "symbolic_allele") for i in range(5)]))
    case("breakends.vcf", H + [
        rec("chr1", 50, "bnd_1", b("chr1", 50), f"{b('chr1', 50)}]chr2:20]"),
        rec("chr1", 51, "bnd_2", b("chr1", 51), f"]chr2:20]{b('chr1', 51)}"),
        rec("chr1", 52, "bnd_3", b("chr1", 52), f"{b('chr1', 52)}[chr2:20["),
        rec("chr1", 53, "single_left", b("chr1", 53), f".{b('chr1', 53)}"),
        rec("chr1", 54, "single_right", b("chr1", 54), f"{b('chr1', 54)}."),
    ], ok(*[(i, "breakend") for i in ("bnd_1", "bnd_2", "bnd_3", "single_left", "single_right")]))
    case("long_indels.vcf", H + [
        rec("chr1", 20, "del_150", b("chr1", 20, 151), b("chr1", 20)),
        rec("chr1", 50, "ins_1001", b("chr1", 50), b("chr1", 50) + _random(1001)),
        rec("chr1", 51, "ins_999", b("chr1", 51), b("chr1", 51) + _random(999)),
        rec("chr1", 100, "complex_long", b("chr1", 100, 40), _random(25)),
    ], ok(("del_150", "scored"), ("ins_1001", "allele_too_long"), ("ins_999", "scored"), ("complex_long", "scored"),
          # G1's and G2's TSSs are deleted (G1 anchored on POS 20, window [-1, 29)); complex_long rewrites G2's
          flags={"del_150": ["off_contig&spans_tss", "spans_tss"], "complex_long": "spans_tss"}))
    CASES.append({"file": "long_indels.vcf", "args": ["--max-allele-len", "100"],
                  **ok(("del_150", "allele_too_long"), ("ins_1001", "allele_too_long"), ("ins_999", "allele_too_long"),
                       ("complex_long", "scored"), flags={"complex_long": "spans_tss"})})
    case("mnvs.vcf", H + [
        rec("chr1", 45, "mnv2", b("chr1", 45, 2), other(b("chr1", 45)) + other(b("chr1", 46))),
        rec("chr1", 58, "mnv3_over_tss", b("chr1", 58, 3), "".join(other(x) for x in b("chr1", 58, 3))),
        rec("chr1", 118, "mnv_minus", b("chr1", 118, 4), b("chr1", 118) + other(b("chr1", 119)) + b("chr1", 120, 2)),
    ], ok(("mnv2", "scored"), ("mnv3_over_tss", "scored"), ("mnv_minus", "scored")))
    dup = snv("chr1", 45, "dup")
    case("duplicate_records.vcf", H + [dup, dup, dup, snv("chr1", 46, "x")],
         ok(("dup", "scored"), ("dup", "scored"), ("dup", "scored"), ("x", "scored")))
    case("unsorted.vcf", H + [snv("chr2", 10, "c"), snv("chr1", 115, "b"), snv("chr1", 45, "a"),
                              snv("3", 30, "d"), snv("chr1", 46, "a2")],
         ok(("c", "scored"), ("b", "scored"), ("a", "scored"), ("d", "scored"), ("a2", "scored"),
            flags={"c": "off_contig&n_rich"}, out="out.vcf.gz", indexed=False, log="not indexed"))
    case("missing_alt.vcf", H + [rec("chr1", 45, "noalt", b("chr1", 45), "."), snv("chr1", 46, "fine"),
                                 rec("chr1", 300, "noalt_nogene", b("chr1", 300), ".")],
         ok(("noalt", "missing_alt"), ("fine", "scored"), ("noalt_nogene", "missing_alt")))
    case("spanning_deletion.vcf", H + [
        rec("chr1", 44, "del", b("chr1", 44, 3), b("chr1", 44), samples=("0/1",)),
        rec("chr1", 45, "star_only", b("chr1", 45), "*", samples=("0/1",)),
        rec("chr1", 46, "snv_or_star", b("chr1", 46), f"{other(b('chr1', 46))},*", samples=("1/2",)),
    ], ok(("del", "scored"), ("star_only", "spanning_deletion"), ("snv_or_star", ".,spanning_deletion")))
    # -- file-level -------------------------------------------------------------------------------------------------
    case("windows_line_endings.vcf", H + [snv("chr1", 45, "a"), snv("chr1", 115, "b"), rec("chr9", 1, "c", "A", "G")],
         ok(("a", "scored"), ("b", "scored"), ("c", "unknown_contig")), eol="\r\n")
    big = H + [snv("chr1", 40 + i % 30, f"r{i}", info=f"DP={i}") for i in range(3000)]
    data = "".join(line + "\n" for line in big).encode()
    case("truncated.vcf.gz", data, err(r"truncated\.vcf\.gz: the BGZF end-of-file marker is missing"))
    case("truncated_plain_gzip.vcf.gz", data, {"plain_gzip": True, **err(
        r"truncated_plain_gzip\.vcf\.gz:\d+: the compressed file is truncated or corrupt after line \d+")})
    case("gzip_not_bgzip.vcf.gz", H + [snv("chr1", 45, "a"), snv("chr2", 50, "b")],
         {"plain_gzip": True, **ok(("a", "scored"), ("b", "scored"), flags={"b": "off_contig&n_rich"})})
    case("info_collides_with_ours.vcf", header(extra=[
        '##INFO=<ID=VXP,Number=1,Type=Integer,Description="someone else\'s VXP">',
        '##INFO=<ID=VXP_SKIP,Number=.,Type=String,Description="someone else\'s VXP_SKIP">']) + [
        snv("chr1", 45, "a", info="DP=3;VXP=7;VXP_SKIP=foo"), snv("chr1", 300, "b", info="VXP=1"),
    ], ok(("a", "scored"), ("b", "no_gene_in_window"), log="already declares INFO/VXP"))
    samples = ("NA1", "NA2", "NA3")
    fmt_lines = ['##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Allelic depths">',
                 '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Depth">',
                 '##FORMAT=<ID=GQ,Number=1,Type=Integer,Description="Genotype quality">',
                 '##FORMAT=<ID=PL,Number=G,Type=Integer,Description="Phred likelihoods">',
                 '##FORMAT=<ID=PS,Number=1,Type=Integer,Description="Phase set">']
    case("multisample_genotypes.vcf", header(samples=samples, extra=fmt_lines) + [
        rec("chr1", 45, "biallelic", b("chr1", 45), other(b("chr1", 45)), fmt="GT:AD:DP:GQ:PL:PS",
            samples=("0|1:10,12:22:99:300,0,280:45", "1/1:0,30:30:90:900,90,0:.", "./.:.:.:.:.:.")),
        rec("chr1", 115, "multiallelic", b("chr1", 115), f"{other(b('chr1', 115))},{other(other(b('chr1', 115)))}",
            fmt="GT:AD:DP:GQ:PL", samples=("1/2:0,5,6:11:40:400,200,300,100,0,120",
                                           "0/0:20,0,0:20:60:0,60,600,60,600,600", ".|1:.,3,.:3:5:.")),
        rec("chr1", 116, "haploid", b("chr1", 116), other(b("chr1", 116)), fmt="GT:DP",
            samples=("1:5", "0:7", ".:.")),
        rec("chr1", 300, "unscored", b("chr1", 300), "<DEL>", fmt="GT", samples=("0/1", "0/0", "1/1")),
    ], ok(("biallelic", "scored"), ("multiallelic", "scored"), ("haploid", "scored"), ("unscored", "symbolic_allele")))
    case("bcf_input.bcf", H + [snv("chr1", 45, "a"), rec("chr1", 46, "star", b("chr1", 46), "*"),
                               snv("chr2", 1, "edge")],
         ok(("a", "scored"), ("star", "spanning_deletion"), ("edge", "scored"), flags={"edge": "off_contig&n_rich"}))
    # -- malformed lines: stop with file:line: cause ----------------------------------------------------------------
    line_no = len(H) + 2  # the second record
    good = [snv("chr1", 45, "a")]
    case("blank_line_between_records.vcf", H + good + ["", snv("chr1", 46, "b")],
         err(rf"blank_line_between_records\.vcf:{line_no}: blank line"))
    case("trailing_blank_line.vcf", H + good + [""],
         err(rf"trailing_blank_line\.vcf:{line_no}: blank line"))
    case("comment_line_between_records.vcf", H + good + ["# a note", snv("chr1", 46, "b")],
         err(rf"comment_line_between_records\.vcf:{line_no}: a '#' line after the #CHROM header line"))
    case("space_separated_columns.vcf", H + good + [snv("chr1", 46, "b").replace("\t", " ")],
         err(rf"space_separated_columns\.vcf:{line_no}: 1 tab-separated columns.*spaces, not tabs"))
    case("too_few_columns.vcf", H + good + ["chr1\t46\tb\tA"],
         err(rf"too_few_columns\.vcf:{line_no}: 4 tab-separated columns, the #CHROM header line has 10"))
    case("extra_column.vcf", H + good + [snv("chr1", 46, "b") + "\t0/1"],
         err(rf"extra_column\.vcf:{line_no}: 11 tab-separated columns, the #CHROM header line has 10"))
    case("empty_column.vcf", H + good + [rec("chr1", 46, "b", "", "G")],
         err(rf"empty_column\.vcf:{line_no}: column 4 is empty"))
    case("non_numeric_pos.vcf", H + good + [rec("chr1", "4x", "b", "A", "G")],
         err(rf"non_numeric_pos\.vcf:{line_no}: POS '4x' is not a non-negative integer"))
    case("negative_pos.vcf", H + good + [rec("chr1", -3, "b", "A", "G")],
         err(rf"negative_pos\.vcf:{line_no}: POS '-3' is not a non-negative integer"))
    case("non_numeric_qual.vcf", H + good + [snv("chr1", 46, "b", qual="high")],
         err(rf"non_numeric_qual\.vcf:{line_no}: QUAL 'high' is not a number"))
    case("bad_info_integer.vcf", H + good + [snv("chr1", 46, "b", info="DP=12x")],
         err(rf"bad_info_integer\.vcf:{line_no}: INFO/DP value '12x' is not an integer"))
    case("bad_format_integer.vcf", header(extra=fmt_lines[:1]) + good + [
        snv("chr1", 46, "b", fmt="GT:AD", samples=("0/1:3,x",))],
        err(rf"bad_format_integer\.vcf: line {line_no + 1}: htslib cannot parse this record"))
    case("binary_garbage.vcf", bytes(rng.randrange(256) for _ in range(500)),
         err(r"binary_garbage\.vcf:1: not a VCF"))


def main() -> None:
    for p in HERE.iterdir():
        if p.suffix in (".vcf", ".gz", ".bcf", ".csi", ".tbi", ".fa", ".fai") or p.name in ("genes.tsv",
                                                                                              "expected.yaml"):
            p.unlink()
    with open(HERE / "genome.fa", "w") as fh:
        for name, seq in CONTIGS.items():
            fh.write(f">{name}\n" + "".join(seq[i:i + 60] + "\n" for i in range(0, len(seq), 60)))
    import pysam

    pysam.faidx(str(HERE / "genome.fa"))
    (HERE / "genes.tsv").write_text("".join("\t".join(map(str, g)) + "\n" for g in GENES))
    build()
    for name in ("no_records.bcf", "bcf_input.bcf"):
        text = HERE / name
        tmp = HERE / (name + ".vcf")
        text.rename(tmp)
        subprocess.run(["bcftools", "view", "--no-version", "-O", "b", "-o", str(text), str(tmp)], check=True)
        tmp.unlink()
    for name in ("truncated.vcf.gz", "truncated_plain_gzip.vcf.gz"):
        trunc = HERE / name
        trunc.write_bytes(trunc.read_bytes()[: trunc.stat().st_size // 2])
    with open(HERE / "expected.yaml", "w") as fh:
        fh.write("# Expected outcome of `varxpress score` on each file of this folder (see make_corpus.py for the "
                 "format).\n")
        yaml.safe_dump(CASES, fh, sort_keys=False, width=120)


if __name__ == "__main__":
    main()
