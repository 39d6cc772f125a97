"""Sequence windows around a TSS and their one-hot encoding."""
