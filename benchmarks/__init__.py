"""Benchmarks: they measure and report, never assert.

``python -m benchmarks`` (from the repository root) times the core's setup work on large synthetic models, prints
a table and writes JSON to ``benchmarks/results/`` (git-ignored). ``python -m benchmarks.parity`` compares
behaviour with the reference Fine-Tuning Scheduler (see ``benchmarks/parity/README.md``).
"""
