"""Training LoRA experts: the one training loop, dev-set clusters, expert training and its
command line (dswarm-experts)."""
