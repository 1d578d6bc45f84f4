"""The search: the PSO (pure tensor maths), the evaluation of particles (generate, answer, judge,
objective), the contract a method gets (context.py) and the methods side by side (methods/)."""
