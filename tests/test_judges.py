"""The four judges; the openai judge against a real loopback HTTP server."""
import logging
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from objectives.judging.judges import ReferenceJudge, VerifierJudge, extract_number, reference_match
from objectives.judging.llm_judges import HFLLMJudge, OpenAIJudge, parse_rating
from objectives.tasks.item import Item
from tests.fake_endpoint import FakeServer

KEY = "sk-test-7f3a9c-very-secret"
ENV = "DSWARM_TEST_JUDGE_KEY"


# ---------------------------------------------------------------- verifier


def test_verifier_exact_check_lsd_first_answers():
    j = VerifierJudge()
    items = [Item("47+38", "85", True), Item("47+38", "85", True), Item("3*8+51", "75", True),
             Item("62-19", "43", True), Item("not a problem", None, False)]
    # answers are written least-significant digit first: 85 -> "58", 75 -> "57"
    assert j.score(items, ["58", "85", "57 ", "", "1"]) == [1.0, 0.0, 1.0, 0.0, None]
    assert j.failures == 1
    with pytest.raises(ValueError, match="2 items but 1 answers"):
        j.score(items[:2], ["58"])


# ---------------------------------------------------------------- reference


@pytest.mark.parametrize(
    "text, value",
    [("#### 42", 42.0), ("so 6*7 = 42\n#### 42", 42.0), ("$1,234.50", 1234.5), ("42.0", 42.0),
     ("The answer is 42.", 42.0), ("The answer is 42, not 41", 42.0), ("12 apples and 30 pears: 42", 42.0),
     ("she owes -5 dollars", -5.0), ("5-3", 3.0), ("no digits", None), ("", None), (None, None),
     ("1" * 400, None), ("#### ", None)],
)
def test_extract_number(text, value):
    assert extract_number(text) == value


@pytest.mark.parametrize(
    "answer, reference, match",
    [
        ("The answer is 42.", "42", True),
        ("#### 42.0", "Half of 84 is 42.\n#### 42", True),
        ("It costs $1,234.50 in total", "1234.5", True),
        ("41", "42", False),
        ("forty-two", "42", False),
        ("Paris", "Paris", True),
        ("It is Paris.", "paris", True),
        ("The Eiffel Tower", "eiffel tower", True),   # articles and case dropped
        ("Parisian food", "Paris", False),            # whole words only
        ("London", "Paris", False),
        ("", "", True),
        ("anything", "", False),
    ],
)
def test_reference_match(answer, reference, match):
    assert reference_match(answer, reference) is match


def test_reference_judge_missing_output_is_none():
    j = ReferenceJudge()
    items = [Item("q1", "42", True), Item("q2", None, True), Item("q3", "Paris", True)]
    assert j.score(items, ["#### 42", "42", None]) == [1.0, None, 0.0]
    assert j.failures == 1


# ---------------------------------------------------------------- hf_llm


def test_parse_rating():
    assert parse_rating("8") == pytest.approx(7 / 9)
    assert parse_rating("Rating: 10/10") == 1.0
    assert parse_rating(" 1") == 0.0
    assert parse_rating("0 at first, then 7") == pytest.approx(6 / 9)   # first integer in 1..10
    for bad in ["", None, "great", "11", "7.5", "0"]:
        assert parse_rating(bad) is None


def test_hf_llm_judge_with_fake_generate():
    seen = []

    def generate(prompts):
        seen.extend(prompts)
        return ["9", "I'd say 4 out of 10", "no idea"]

    j = HFLLMJudge(generate, template="Q={question} A={answer} R={reference} rate 1-10:")
    items = [Item("2+2", "4", True), Item("capital of France?", None, True), Item("x", "y", True)]
    assert j.score(items, ["4", "Lyon", "z"]) == pytest.approx([8 / 9, 3 / 9, None])
    assert seen[0] == "Q=2+2 A=4 R=4 rate 1-10:" and "R=(none)" in seen[1]
    assert j.failures == 1
    assert j.score([], []) == []


def test_hf_llm_judge_errors():
    with pytest.raises(ValueError, match="judge.template"):
        HFLLMJudge(lambda p: p, template="{question} {score}")
    j = HFLLMJudge(lambda prompts: ["5"])
    with pytest.raises(ValueError, match="1 replies for 2 prompts"):
        j.score([Item("a", "b", True)] * 2, ["x", "y"])


# ---------------------------------------------------------------- openai over loopback HTTP


@pytest.fixture
def server():
    s = FakeServer()
    yield s
    s.close()


@pytest.fixture
def judge_factory(server, monkeypatch):
    monkeypatch.setenv(ENV, KEY)
    made = []

    def make(**kw):
        args = dict(base_url=server.url, model="judge-model", api_key_env=ENV, concurrency=1,
                    timeout=2.0, max_retries=2, backoff=0.001, backoff_max=0.005)
        args.update(kw)
        j = OpenAIJudge(**args)
        made.append(j)
        return j

    yield make
    for j in made:
        j.close()


ITEM = Item("What is 6*7?", "42", True)


def test_openai_good_ratings_concurrent_and_auth_header(server, judge_factory):
    j = judge_factory(concurrency=4)
    items = [Item(f"question {i}", "42", True) for i in range(8)]
    assert j.score(items, ["42"] * 8) == pytest.approx([7 / 9] * 8)
    assert j.failures == 0 and len(server.requests) == 8
    path, headers, body = server.requests[0]
    assert path == "/v1/chat/completions"
    assert headers["Authorization"] == f"Bearer {KEY}"
    assert body["model"] == "judge-model" and body["messages"][0]["role"] == "user"
    assert sorted(r[2]["messages"][0]["content"].split("\n")[1] for r in server.requests) == sorted(
        f"Question: question {i}" for i in range(8))


def test_openai_retries_500_then_succeeds(server, judge_factory):
    server.plan = [("status", 500), ("status", 503), ("ok", "10")]
    j = judge_factory()
    assert j.score([ITEM], ["42"]) == [1.0]
    assert len(server.requests) == 3 and j.failures == 0 and j.retries == 2


def test_openai_always_500_is_missing_and_counted(server, judge_factory):
    server.default = ("status", 500)
    j = judge_factory(max_retries=2)
    assert j.score([ITEM, ITEM], ["42", "41"]) == [None, None]
    assert len(server.requests) == 6 and j.failures == 2


def test_openai_timeout_is_retried(server, judge_factory):
    server.plan = [("sleep", 0.6)]                   # first attempt exceeds the 0.15 s timeout
    server.default = ("ok", "3")
    j = judge_factory(timeout=0.15)
    assert j.score([ITEM], ["42"]) == [pytest.approx(2 / 9)]
    assert j.retries == 1 and j.failures == 0


def test_openai_always_slow_is_missing(server, judge_factory):
    server.default = ("sleep", 0.5)
    j = judge_factory(timeout=0.1, max_retries=1)
    t0 = time.perf_counter()
    assert j.score([ITEM], ["42"]) == [None]
    assert j.failures == 1 and time.perf_counter() - t0 < 1.5


def test_openai_malformed_bodies_are_retried(server, judge_factory):
    server.plan = [("raw", b"not json at all"), ("raw", b'{"choices": []}'), ("ok", "2")]
    j = judge_factory(max_retries=2)
    assert j.score([ITEM], ["42"]) == [pytest.approx(1 / 9)]
    server.default = ("raw", b'{"choices": [{"message": {"content": null}}]}')
    assert j.score([ITEM], ["42"]) == [None]
    assert j.failures == 1


def test_openai_429_is_retried(server, judge_factory):
    server.plan = [("429", None)]
    j = judge_factory()
    assert j.score([ITEM], ["42"]) == [pytest.approx(7 / 9)]
    assert len(server.requests) == 2


def test_openai_401_is_not_retried(server, judge_factory, caplog):
    server.default = ("status", 401)
    j = judge_factory(max_retries=3)
    with caplog.at_level(logging.DEBUG):
        assert j.score([ITEM], ["42"]) == [None]
    assert len(server.requests) == 1 and j.failures == 1
    assert "401" in caplog.text and KEY not in caplog.text


def test_openai_unparseable_reply_is_missing_not_retried(server, judge_factory):
    server.default = ("ok", "a fine answer")
    j = judge_factory()
    assert j.score([ITEM], ["42"]) == [None]
    assert len(server.requests) == 1 and j.failures == 1


def test_openai_connection_refused_is_missing(monkeypatch, caplog):
    monkeypatch.setenv(ENV, KEY)
    free = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = free.server_address[1]
    free.server_close()
    j = OpenAIJudge(base_url=f"http://127.0.0.1:{port}", model="m", api_key_env=ENV, max_retries=1, backoff=0.001, timeout=0.5)
    with caplog.at_level(logging.DEBUG):
        assert j.score([ITEM], ["42"]) == [None]
    assert j.failures == 1 and KEY not in caplog.text
    j.close()


def test_openai_key_never_shown(judge_factory, monkeypatch):
    j = judge_factory()
    for text in (repr(j), str(j), repr(vars(j))):
        assert KEY not in text
    assert ENV in repr(j)
    with pytest.raises(ValueError) as e:
        j.score([ITEM], [])
    assert KEY not in str(e.value) and KEY not in repr(e.value)
    monkeypatch.delenv(ENV)
    with pytest.raises(ValueError, match=ENV) as e:
        OpenAIJudge(base_url="http://127.0.0.1:9", model="m", api_key_env=ENV)
    assert KEY not in str(e.value)
