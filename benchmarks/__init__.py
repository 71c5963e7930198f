"""Runnable benchmarks; each writes its own section of BENCHMARKS.md (see ``benchmarks.report``)."""
