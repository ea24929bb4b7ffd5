"""Sweeps (`train -m`): the job wrapper, the summary with the selected model, the plots."""
