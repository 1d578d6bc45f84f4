"""What every run needs around its maths: errors as one line, atomic files, checkpoints, the run dir,
processes (Accelerate), tracking (metrics.jsonl, W&B, plots), progress lines and sweeps."""
