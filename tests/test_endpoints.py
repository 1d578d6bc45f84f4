"""The one endpoint client (objectives/endpoints.py) against a loopback server: cache, usage, limits, retries."""
import time

import pytest

from objectives.endpoints import Counts, Endpoint, Usage, merge, since, usage_metrics, usage_report
from tests.fake_endpoint import FakeServer

ENV = "DSWARM_TEST_ENDPOINT_KEY"
KEY = "sk-endpoint-test-31c7"


@pytest.fixture
def server():
    s = FakeServer()
    yield s
    s.close()


def endpoint(server, **kw) -> Endpoint:
    args = dict(model="m", api_key_env=ENV, concurrency=4, timeout=2.0, max_retries=2, backoff=0.001, backoff_max=0.005)
    args.update(kw)
    return Endpoint(server.url, **args)


def test_usage_is_the_servers_token_counts(server):
    e = endpoint(server)
    assert e.ask(["ab", "cde", "f"], max_tokens=4) == ["8", "8", "8"]
    counts = e.usage.snapshot()["m"]
    # the fake server reports a prompt's characters and the reply's characters as tokens
    assert (counts.requests, counts.prompt_tokens, counts.completion_tokens, counts.cached) == (3, 2 + 3 + 1, 3, 0)


def test_the_disk_cache_asks_nothing_twice(server, tmp_path):
    first = endpoint(server, cache_dir=tmp_path)
    assert first.ask(["q1", "q2"], max_tokens=4) == ["8", "8"]
    first.close()
    again = endpoint(server, cache_dir=tmp_path, usage=Usage())  # a resumed or repeated run: a new client
    server.default = ("ok", "changed")  # the server would now say something else
    assert again.ask(["q2", "q1"], max_tokens=4) == ["8", "8"]
    assert len(server.requests) == 2 and again.usage.snapshot()["m"].cached == 2
    assert again.ask(["q1"], max_tokens=4, temperature=0.7) == ["changed"]  # other sampling settings: asked
    assert again.ask(["q1"], max_tokens=5) == ["changed"]
    assert endpoint(server, model="other", cache_dir=tmp_path).ask(["q1"], max_tokens=4) == ["changed"]  # other model
    assert len(server.requests) == 5


def test_a_prompt_twice_in_one_call_is_asked_once(server):
    e = endpoint(server)
    assert e.ask(["same", "same", "other"], max_tokens=4) == ["8", "8", "8"]
    assert len(server.requests) == 2


def test_failures_are_missing_and_never_cached(server, tmp_path):
    server.default = ("status", 500)
    e = endpoint(server, cache_dir=tmp_path, max_retries=1)
    assert e.ask(["q"], max_tokens=4) == [None]
    assert len(server.requests) == 2
    counts = e.usage.snapshot()["m"]
    assert (counts.failed, counts.retries, counts.requests) == (1, 1, 0)
    server.default = ("ok", "7")
    assert e.ask(["q"], max_tokens=4) == ["7"]  # asked again: the failure was not kept


def test_completions_api_posts_the_prompt_with_stop(server, monkeypatch):
    monkeypatch.setenv(ENV, KEY)
    e = endpoint(server, api="completions")
    assert e.ask(["Q: 1+1\nA:"], max_tokens=3, stop="\n") == ["8"]
    path, headers, body = server.requests[0]
    assert path == "/v1/completions" and headers["Authorization"] == f"Bearer {KEY}"
    assert body == {"model": "m", "prompt": "Q: 1+1\nA:", "max_tokens": 3, "temperature": 0.0, "stop": ["\n"]}
    assert KEY not in repr(e) and KEY not in repr(vars(e))


def test_no_key_in_the_environment_sends_no_authorization(server, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    endpoint(server).ask(["q"], max_tokens=2)
    assert "Authorization" not in server.requests[0][1]


def test_at_most_concurrency_requests_in_flight(server):
    server.default = ("sleep", 0.15)
    e = endpoint(server, concurrency=2)
    t0 = time.perf_counter()
    assert e.ask([f"q{i}" for i in range(6)], max_tokens=2) == ["5"] * 6
    # never more than 2 at once, so 6 requests of 0.15 s take 3 rounds (a busy machine may overlap them less)
    assert server.peak <= 2 and time.perf_counter() - t0 >= 3 * 0.15


def test_retry_after_is_honoured_up_to_the_cap(server):
    server.plan = [("429", "0.3")]
    t0 = time.perf_counter()
    assert endpoint(server, backoff_max=5.0).ask(["q"], max_tokens=2) == ["8"]
    assert time.perf_counter() - t0 >= 0.3
    server.plan = [("429", "100")]
    t0 = time.perf_counter()
    assert endpoint(server, backoff_max=0.05).ask(["q2"], max_tokens=2) == ["8"]
    assert time.perf_counter() - t0 < 5


def test_a_bad_api_is_one_clear_error(server):
    with pytest.raises(ValueError, match="endpoint api"):
        endpoint(server, api="responses")


def test_usage_report_and_dollars_by_hand():
    per_model = {"a": Counts(requests=3, prompt_tokens=1_000_000, completion_tokens=500_000), "b": Counts(cached=2, prompt_tokens=10)}
    prices = {"a": {"prompt": 2.0, "completion": 8.0}}
    report = usage_report(per_model, prices)
    # a: 1M prompt tokens at $2 per million + 0.5M completion tokens at $8 per million = $6; b has no price
    assert report["dollars"] == 6.0 and report["unpriced"] == ["b"]
    assert (report["requests"], report["cached"], report["prompt_tokens"], report["completion_tokens"]) == (3, 2, 1_000_010, 500_000)
    assert report["models"]["b"]["cached"] == 2
    assert usage_metrics(per_model, {})["usage/prompt_tokens"] == 1_000_010 and "usage/dollars" not in usage_metrics(per_model, {})


def test_since_and_merge_are_per_model_differences_and_sums():
    before = {"a": Counts(requests=1, prompt_tokens=5)}
    now = {"a": Counts(requests=4, prompt_tokens=9), "b": Counts(failed=1)}
    assert since(now, before) == {"a": Counts(requests=3, prompt_tokens=4), "b": Counts(failed=1)}
    assert merge([before, now]) == {"a": Counts(requests=5, prompt_tokens=14), "b": Counts(failed=1)}


@pytest.mark.slow
def test_a_repeated_run_asks_the_judge_nothing_and_logs_its_usage(tiny_zoo, tmp_path, monkeypatch):
    """judge=openai (tools/judge_server.py): usage per step and per run; a second run in a new dir is all cache."""
    from tests.cli import FAST, read_jsonl
    from tests.inprocess import run
    from tools.judge_server import JudgeServer, judge_overrides

    monkeypatch.setenv(ENV, KEY)
    with JudgeServer(KEY) as server:
        overrides = [*FAST, *judge_overrides(server, ENV), "endpoints.cache=true", f"endpoints.cache_dir={tmp_path / 'cache'}",
                     "pso.max_steps=2", "+endpoints.prices.loopback.prompt=1.5"]
        first = run(*overrides, run_dir=tmp_path / "first")
        asked = server.requests
        second = run(*overrides, run_dir=tmp_path / "second")
        assert server.requests == asked  # nothing asked twice
    rows = read_jsonl(tmp_path / "first" / "metrics.jsonl")
    assert [r["usage/requests"] > 0 for r in rows] == [True, True]
    # every distinct prompt is one billed request; the loopback stand-in reports no tokens
    assert first["usage"]["requests"] == asked and first["usage"]["models"]["loopback"]["requests"] == asked
    assert sum(r["usage/requests"] for r in rows) <= asked and first["usage"]["dollars"] == 0.0
    # the first run's replies, asked or already cached there, all come from the cache now
    assert second["usage"]["requests"] == 0 and second["usage"]["cached"] == asked + first["usage"]["cached"]
    assert second["heldout"] == first["heldout"]
