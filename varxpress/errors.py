"""Exceptions and warnings of varxpress.

Every error is a subclass of :class:`VarxpressError` *and* of the builtin it refines, so callers can catch either.
Messages name the bad value, where it came from (file, line, variant) and, where there is one, the fix.
"""


class VarxpressError(Exception):
    """Base class of every error varxpress raises on purpose."""


class GenomeError(VarxpressError, ValueError):
    """The reference FASTA cannot be used as asked."""


class UnknownContigError(GenomeError, KeyError):
    """A contig is in neither the FASTA nor its aliases."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class FastaIndexError(GenomeError):
    """The FASTA has no index and one cannot be made."""


class VcfError(VarxpressError, ValueError):
    """A VCF/BCF file or record cannot be read."""


class RefMismatchError(VcfError):
    """A record's REF allele disagrees with the reference genome."""


class AnnotationError(VarxpressError, ValueError):
    """A TSS annotation (BED, GTF, GFF3, TSV) cannot be read."""


class ModelError(VarxpressError, ValueError):
    """A model file is unreadable or does not fit the data."""


class DatasetError(VarxpressError, ValueError):
    """A prepared training set or label table cannot be used."""


class OutputError(VarxpressError, OSError):
    """An output cannot be written (read-only location, full disk, ...)."""


class UsageError(VarxpressError, ValueError):
    """The command line asks for something that cannot be done (exit status 2), e.g. an output that is an input."""


class ReaderGone(OutputError, BrokenPipeError):
    """The reader of a pipe (standard output, a FIFO) went away, e.g. ``| head``; the other outputs are complete.
    ``stats``: what the run counted (``varxpress score`` still writes its ``--stats``), where the raiser has them."""

    stats = None


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's kill, ``kill PID``) arrived; handled like Ctrl-C: outputs are cleaned up (exit 143)."""


class RefMismatchWarning(UserWarning):
    """A record's REF allele disagrees with the reference genome (``--on-ref-mismatch warn``)."""
