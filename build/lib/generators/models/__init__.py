"""One base LM in memory with its LoRA adapters: in-place particles, multi-LoRA batches, decoding,
LoRA <-> flat vectors, token budgets and the built models' cache."""
