"""Every caller of an OpenAI-compatible endpoint (served takers, judge=openai, verifier=openai) goes through here.

`client`: the one HTTP client (retries, concurrency, reply cache, the key read from the environment) and the
endpoint settings' types; `usage`: what the calls cost, per model. Its own room at the front of the data flow
(tools/check_imports.py ROOMS): the judges, the verifiers and the served takers all call endpoints.
"""
from objectives.endpoints.client import (
    APIS,
    ApiKeyEnv,
    Backoff,
    Concurrency,
    Endpoint,
    Retries,
    Timeout,
    key_set,
)
from objectives.endpoints.usage import Counts, Usage, merge, since, usage_metrics, usage_report

__all__ = ["APIS", "ApiKeyEnv", "Backoff", "Concurrency", "Counts", "Endpoint", "Retries", "Timeout", "Usage", "key_set",
           "merge", "since", "usage_metrics", "usage_report"]
