"""Whole-fit performance, side by side: this project, FTS 2.14.1 and plain Lightning (``python -m benchmarks``)."""
