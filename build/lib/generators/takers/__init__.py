"""Test takers: a panel of LoRA takers of one base, a panel of independent models, and the
entries of taker.models / taker.heldout resolved into them."""
