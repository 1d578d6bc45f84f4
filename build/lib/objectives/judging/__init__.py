"""Judging: judges score answers (exact, reference, LLM), verifiers confirm generated items' own
answers, answers are extracted from reasoning, and the scores form one tensor."""
