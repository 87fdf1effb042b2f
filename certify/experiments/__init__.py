"""Experiments: sweeps over seeds and strategies, reports, sampled estimates."""
