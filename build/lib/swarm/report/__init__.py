"""What comes out of runs: tables over sweeps (dswarm-report), paired statistics over seeds,
and a run's results in Hugging Face form (best/dataset/, dswarm-push)."""
