"""Evaluation: benchmark loaders, refusal and utility scorers, runner and report."""
