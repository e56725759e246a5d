"""The end-to-end demo behind ``make demo``: a real model, simulated traffic, the whole pipeline."""
