"""Parity harness: the same scenarios under the reference Fine-Tuning Scheduler and under this project."""
