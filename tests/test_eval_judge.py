"""The LLM judge against a local OpenAI-compatible server on 127.0.0.1: slow answers, 500s,
malformed replies and timeouts, the cache, the score parse, and the rubrics."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from instruct_data.errors import InputError
from instruct_data.evaluation.judge import (JudgeConfig, JudgeError, Task, judge, parse_score, rubrics_for)

SLOW_S = 0.3
HANG_S = 1.5  # longer than the tests' timeout; the handler ends anyway, so no thread is left behind
TIMEOUT_S = 0.8  # the timeout test's; the others wait as long as a loaded CI machine may need
PATIENT_S = 30.0


class FakeJudge(BaseHTTPRequestHandler):
    """chat/completions whose behaviour the answer under judgement asks for."""

    requests: list = []
    seen: dict = {}
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["messages"][0]["content"]
        with self.lock:
            self.requests.append({"prompt": prompt, "auth": self.headers.get("Authorization"), "model": body["model"]})
            self.seen[prompt] = self.seen.get(prompt, 0) + 1
            attempt = self.seen[prompt]
        if "ALWAYS500" in prompt or ("FLAKY" in prompt and attempt == 1):
            return self._send(500, b'{"error": "overloaded"}')
        if "HANG" in prompt:
            time.sleep(HANG_S)
        if "SLOW" in prompt:
            time.sleep(SLOW_S)
        if "NOTJSON" in prompt:
            return self._send(200, b"<html>gateway</html>")
        if "MALFORMED" in prompt:
            content = "这个回答还不错，但我不想打分。"
        else:
            score = next((c for c in "0123456789" if f"SCORE{c}" in prompt), "7")
            content = f"理由：回答切题。\n得分：{score}"
        self._send(200, json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode())

    def _send(self, status, payload):
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    FakeJudge.requests, FakeJudge.seen = [], {}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeJudge)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def _config(url, tmp_path, timeout_s=PATIENT_S, **kw):
    return JudgeConfig(url=url, model="judge-7b", cache_path=str(tmp_path / "cache.sqlite"), concurrency=4,
                       timeout_s=timeout_s, retries=1, backoff_s=0.01, **kw)


def test_faults_are_retried_counted_and_never_guessed(server, tmp_path, monkeypatch):
    monkeypatch.setenv("JUDGE_TEST_KEY", "sk-local")
    tasks = [Task("问题一", "参考", "好的回答 SCORE9"), Task("问题二", None, "慢一点的回答 SLOW SCORE4"),
             Task("问题三", "参考", "第一次 500 FLAKY SCORE6"), Task("问题四", "参考", "总是 500 ALWAYS500"),
             Task("问题五", "参考", "MALFORMED 回答"), Task("问题六", "参考", "NOTJSON 回答"),
             Task("问题七", "参考", "HANG 回答"), Task("问题八", "参考", "   "),
             Task("问题一", "参考", "好的回答 SCORE9")]  # the same question and answer: asked once
    started = time.monotonic()
    verdicts, stats = judge(tasks, _config(server, tmp_path, TIMEOUT_S, key_env="JUDGE_TEST_KEY"), rubrics_for(None))
    elapsed = time.monotonic() - started
    status = [v.status for v in verdicts]
    assert status == ["ok", "ok", "ok", "failed", "unparsed", "failed", "failed", "empty", "ok"]
    # 1–10 scale shown as 0–100
    assert [v.score for v in verdicts[:3]] == pytest.approx([800 / 9, 300 / 9, 500 / 9], abs=1e-3)
    assert "gave up after 1 retries" in verdicts[3].reason and "500" in verdicts[3].reason
    assert "no score line" in verdicts[4].reason and "不想打分" in verdicts[4].reason
    assert "not JSON" in verdicts[5].reason
    assert "timed out" in verdicts[6].reason
    assert verdicts[7].score == 0.0
    assert stats["ok"] == 4 and stats["failed"] == 3 and stats["unparsed"] == 1 and stats["asked"] == 7
    prompts = [r["prompt"] for r in FakeJudge.requests]
    assert sum("ALWAYS500" in p for p in prompts) == 2 and sum("FLAKY" in p for p in prompts) == 2  # one retry each
    assert sum("HANG" in p for p in prompts) == 2  # the timeout is retried too
    assert sum("问题一" in p for p in prompts) == 1
    assert {r["auth"] for r in FakeJudge.requests} == {"Bearer sk-local"}
    assert elapsed < 3 * HANG_S + 2  # bounded: requests run side by side, retries are capped

    # A rerun asks again what failed or was unreadable; only readable scores come from the cache.
    FakeJudge.requests.clear()
    again, stats = judge(tasks, _config(server, tmp_path, TIMEOUT_S, key_env="JUDGE_TEST_KEY"), rubrics_for(None))
    assert [v.status for v in again] == status and again[0].cached
    assert stats["cached"] == 4 and stats["asked"] == 4
    assert all(any(m in r["prompt"] for m in ("ALWAYS500", "NOTJSON", "HANG", "MALFORMED")) for r in FakeJudge.requests)


def test_a_rerun_hits_the_cache_and_sends_no_request(server, tmp_path):
    tasks = [Task(f"问题{i}", "参考答案", f"回答 SCORE{i % 10}", category="open qa") for i in range(12)]
    first, stats = judge(tasks, _config(server, tmp_path), rubrics_for("belle-eval"))
    assert stats["asked"] == 12 and len(FakeJudge.requests) == 12
    # BELLE's 0–1 scale: "得分：7" would be out of range, so single digits >1 are unreadable, 0 and 1 are read
    readable = [i for i, v in enumerate(first) if v.status == "ok"]
    assert [v.status for v in first[:3]] == ["ok", "ok", "unparsed"] and readable == [0, 1, 10, 11]
    FakeJudge.requests.clear()
    second, stats = judge([tasks[i] for i in readable], _config(server, tmp_path), rubrics_for("belle-eval"))
    assert FakeJudge.requests == [] and stats["asked"] == 0 and stats["cached"] == 4
    assert [v.score for v in second] == [first[i].score for i in readable]
    # An unreadable reply was never stored: the rerun asks for it again.
    _, stats = judge(tasks[2:4], _config(server, tmp_path), rubrics_for("belle-eval"))
    assert stats["asked"] == 2 and stats["cached"] == 0
    # another judge model or rubric is another key: asked again
    third, stats = judge(tasks[:2], _config(server, tmp_path), rubrics_for(None))
    assert stats["asked"] == 2
    # so is another endpoint serving a model of the same name (the cache is shared under ~/.cache/idata)
    judge(tasks[1:3], _config(server, tmp_path), rubrics_for(None))  # scores 1 and 2 of 1–10: readable, cached
    elsewhere = server.replace("127.0.0.1", "localhost")
    _, stats = judge(tasks[1:3], _config(elsewhere, tmp_path), rubrics_for(None))
    assert stats["asked"] == 2 and stats["ok"] == 2
    _, stats = judge(tasks[1:3], _config(server, tmp_path), rubrics_for(None))
    assert stats["asked"] == 0 and stats["cached"] == 2


def test_belle_rubrics_per_category_and_a_general_one_otherwise(tmp_path):
    belle = rubrics_for("belle-eval")
    assert belle.for_category("code").name == "belle:code" and belle.for_category("closed qa").name == "belle:closed qa"
    assert belle.for_category("Open QA").name == "belle:open qa"
    assert belle.for_category("something else").name == "general"
    assert "paraphrase" in belle.describe()["source"] and belle.for_category("math").scale == (0, 1)
    assert rubrics_for("idata-zh-mini").for_category("code").name == "general"
    text = belle.for_category("math").render("1+1=?", None, "2")
    assert "1+1=?" in text and "标准回答（仅供参考，可能有误）：无" in text and "模型回答：2" in text
    own = tmp_path / "rubric.txt"
    own.write_text("打分 0-10：{question} / {answer}，格式 score: X", encoding="utf-8")
    assert rubrics_for("belle-eval", str(own)).for_category("code").name == "custom"
    bad = tmp_path / "bad.txt"
    bad.write_text("没有占位符", encoding="utf-8")
    with pytest.raises(InputError, match="bad.txt: .*no {answer} placeholder"):
        rubrics_for(None, str(bad))


def test_score_parse_reads_the_last_score_and_refuses_what_it_cannot_read():
    assert parse_score("先给 得分：3，复核后\n得分：8", (1, 10)) == (pytest.approx(700 / 9, abs=1e-3), None)
    assert parse_score("Rating: [[10]]", (1, 10)) == (100.0, None)
    assert parse_score("score: 0.5", (0, 1)) == (50.0, None)
    assert parse_score("得分：11", (1, 10))[0] is None
    assert parse_score("很好", (1, 10)) == (None, "no score line (得分：X / score: X / [[X]]) in the reply")


def test_a_key_variable_that_is_not_set_is_one_clear_error(monkeypatch):
    monkeypatch.delenv("NO_SUCH_JUDGE_KEY", raising=False)
    with pytest.raises(JudgeError, match="--judge-key-env NO_SUCH_JUDGE_KEY"):
        JudgeConfig(url="http://127.0.0.1:1/v1", model="m", key_env="NO_SUCH_JUDGE_KEY").api_key()
