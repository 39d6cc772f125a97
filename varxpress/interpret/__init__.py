"""Interpretation: background percentiles, saturation mutagenesis and per-variant HTML reports."""
