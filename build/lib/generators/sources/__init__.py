"""Where a run's models come from (the generator and taker groups' _target_): the embedded zoo,
HF dirs and hub ids, SmolLM2; protocol.py says what a source returns."""
