"""Benchmarks: they measure and report, never assert.

``python -m benchmarks`` (from the repository root) measures whole fits side by side with FTS 2.14.1 and plain
Lightning (setup overhead, transitions, steps/s, state-dict translation, phase-0 memory) and the core's own setup
work, prints tables and writes JSON to ``benchmarks/results/`` (git-ignored); see ``docs/performance.md``.
``python -m benchmarks.parity`` compares behaviour with the reference Fine-Tuning Scheduler (see
``benchmarks/parity/README.md``).
"""
