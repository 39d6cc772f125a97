"""Files in and out: the genome, VCF records, TSS annotations, annotated VCF/TSV writers, and the one helper
that creates every output."""
