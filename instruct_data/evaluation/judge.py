"""An LLM judge over any OpenAI-compatible `chat/completions` endpoint (vLLM, SGLang, an API).

    config = JudgeConfig(url="http://127.0.0.1:8000/v1", model="Qwen2.5-72B-Instruct", key_env="JUDGE_KEY")
    verdicts, stats = judge(tasks, config, rubrics_for("belle-eval"))

- The rubric: BELLE's classes get per-class rubrics (paraphrases, see judge_rubrics.yaml),
  any other benchmark a general one, `--judge-prompt FILE` the user's own.
- Requests run in a thread pool (`concurrency`), each with a `timeout`, retried on connection
  errors, timeouts, 429 and 5xx with exponential backoff (urllib3's `Retry`, mounted on a
  `requests` session: well-kept code for what is easy to get wrong).
- A cache (SQLite, one row per (question, reference, answer, judge model, rubric, endpoint URL))
  keeps every readable reply the judge gave, so a rerun sends no request for what was already
  judged. Requests that failed and replies without a readable score are not cached, so a rerun
  (against a fixed or another server) asks them again.
- The score is parsed from the reply ("得分：X", "score: X" or "[[X]]", the last one). A reply
  without a readable score in the rubric's scale is counted as `unparsed` and left out of the
  averages, never guessed; a request that failed after its retries is counted as `failed`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from instruct_data.errors import IdataError, InputError
from instruct_data.redact import redact_url

NO_REFERENCE = "无"
SCORE_PATTERNS = (
    re.compile(r"\[\[\s*(-?\d+(?:\.\d+)?)\s*\]\]"),
    re.compile(r"(?:得分|分数|评分|score|rating)\s*[:：=]\s*\[*\s*(-?\d+(?:\.\d+)?)", re.IGNORECASE),
)
RETRY_STATUSES = (429, 500, 502, 503, 504)


class JudgeError(IdataError):
    """A judge that cannot be used at all: no key in the named variable, a bad rubric file."""


@dataclass
class JudgeConfig:
    url: str
    model: str
    key_env: str | None = None  # the NAME of the variable holding the key; never the key itself
    prompt_file: str | None = None
    concurrency: int = 4
    timeout_s: float = 60.0
    retries: int = 3
    backoff_s: float = 1.0
    max_tokens: int = 512
    cache_path: str | None = None  # None: $IDATA_CACHE/judge-cache.sqlite (or ~/.cache/idata/)

    def __post_init__(self) -> None:
        from instruct_data.redact import check_key_env

        check_key_env(self.key_env)  # a key passed as the variable's name: refused, never echoed

    def endpoint(self) -> str:
        url = self.url.rstrip("/")
        return url if url.endswith("/chat/completions") else url + "/chat/completions"

    def api_key(self) -> str | None:
        if not self.key_env:
            return None
        key = os.environ.get(self.key_env)
        if not key:
            raise JudgeError(f"--judge-key-env {self.key_env}: that environment variable is not set or empty")
        return key

    def describe(self) -> dict:
        from instruct_data.redact import redact_url

        # Written to results.json and report.md: credentials in the URL are masked.
        return {"url": redact_url(self.endpoint()), "judge_model": self.model, "key_env": self.key_env, "concurrency": self.concurrency,
                "timeout_s": self.timeout_s, "retries": self.retries, "temperature": 0}


# ---------------------------------------------------------------- rubrics


@dataclass(frozen=True)
class Rubric:
    name: str
    text: str  # with {question}, {reference}, {answer}
    scale: tuple[float, float]
    source: str

    def render(self, question: str, reference: str | None, answer: str) -> str:
        # replace(), not format(): a rubric may hold braces of its own (a JSON example).
        return (self.text.replace("{question}", question).replace("{reference}", reference or NO_REFERENCE)
                .replace("{answer}", answer))

    def sha256(self) -> str:
        return hashlib.sha256(json.dumps([self.text, list(self.scale)], ensure_ascii=False).encode()).hexdigest()


@dataclass
class Rubrics:
    default: Rubric
    by_category: dict[str, Rubric] = field(default_factory=dict)
    origin: str = "general"

    def for_category(self, category: str | None) -> Rubric:
        return self.by_category.get((category or "").strip().lower(), self.default)

    def describe(self) -> dict:
        used = [self.default, *self.by_category.values()]
        main = next(iter(self.by_category.values()), self.default)  # per-category rubrics, when there are
        return {"origin": self.origin, "source": main.source, "scale": list(main.scale),
                "fallback": {"name": self.default.name, "scale": list(self.default.scale)},
                "rubrics": {r.name: r.sha256()[:16] for r in used}}


def _builtin() -> dict:
    import yaml

    from instruct_data.evaluation.benchmarks import data_dir

    with open(data_dir() / "judge_rubrics.yaml", encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def rubrics_for(benchmark: str | None, prompt_file: str | None = None) -> Rubrics:
    """The user's rubric file, else BELLE's per-class rubrics for belle-eval, else the general one."""
    if prompt_file:
        return _user_rubrics(Path(prompt_file))
    data = _builtin()
    general = data["general"]
    default = Rubric("general", general["text"], tuple(general["scale"]), general["source"])
    if benchmark != "belle-eval":
        return Rubrics(default=default)
    belle = data["belle"]
    by_category = {name: Rubric(f"belle:{name}", text.strip() + "\n" + belle["footer"], tuple(belle["scale"]), belle["source"])
                   for name, text in belle["categories"].items()}
    return Rubrics(default=default, by_category=by_category, origin="belle")


def _user_rubrics(path: Path) -> Rubrics:
    """A plain text prompt (scale 0–10), or YAML with `text`, `scale` and optional `categories`."""
    if not path.is_file():
        raise InputError(str(path), "no such rubric file")
    raw = path.read_text(encoding="utf-8")
    source = f"--judge-prompt {path}"
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(raw)
        if not isinstance(data, dict) or not isinstance(data.get("text"), str):
            raise InputError(str(path), "a YAML rubric needs a `text` (and may give `scale: [low, high]` and `categories`)")
        scale = tuple(data.get("scale") or (0, 10))
        default = Rubric("custom", data["text"], scale, source)
        categories = {str(k).strip().lower(): Rubric(f"custom:{k}", str(v), scale, source)
                      for k, v in (data.get("categories") or {}).items()}
    else:
        default, categories = Rubric("custom", raw, (0, 10), source), {}
    for rubric in [default, *categories.values()]:
        if "{answer}" not in rubric.text:
            raise InputError(str(path), f"rubric {rubric.name!r} has no {{answer}} placeholder: the judge would never see the answer")
    if not default.scale[0] < default.scale[1]:
        raise InputError(str(path), f"scale {list(default.scale)} must be [low, high] with low < high")
    return Rubrics(default=default, by_category=categories, origin="custom")


# ---------------------------------------------------------------- parsing


def parse_score(reply: str, scale: tuple[float, float]) -> tuple[float | None, str | None]:
    """(score on 0–100, None) or (None, why it cannot be read). The last score line counts."""
    found = [m for pattern in SCORE_PATTERNS for m in pattern.finditer(reply or "")]
    if not found:
        return None, "no score line (得分：X / score: X / [[X]]) in the reply"
    value = float(max(found, key=lambda m: m.start()).group(1))
    low, high = scale
    if not low <= value <= high:
        return None, f"score {value:g} outside the rubric's scale {low:g}–{high:g}"
    return round(100.0 * (value - low) / (high - low), 4), None


# ---------------------------------------------------------------- the cache


class Cache:
    """SQLite, written from the calling thread only (the pool's results come back to it)."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path)
        self.db.execute("CREATE TABLE IF NOT EXISTS judge (key TEXT PRIMARY KEY, model TEXT, reply TEXT)")

    def get(self, key: str) -> str | None:
        row = self.db.execute("SELECT reply FROM judge WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def put(self, key: str, model: str, reply: str) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO judge VALUES (?, ?, ?)", (key, model, reply))

    def close(self) -> None:
        self.db.close()


def default_cache_path() -> Path:
    root = os.environ.get("IDATA_CACHE") or Path.home() / ".cache" / "idata"
    return Path(root) / "judge-cache.sqlite"


def cache_key(question: str, reference: str | None, answer: str, model: str, rubric: Rubric,
              endpoint: str = "") -> str:
    """The same question, answer and rubric sent to the same model at the same endpoint: two
    servers that both call their model `qwen` are two judges (the cache is shared under ~/.cache)."""
    parts = [question, reference or "", answer, model, rubric.text, list(rubric.scale), endpoint]
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode("utf-8")).hexdigest()


# ---------------------------------------------------------------- requests


@dataclass
class Task:
    question: str
    reference: str | None
    answer: str
    category: str | None = None


@dataclass
class Verdict:
    status: str  # "ok", "unparsed", "failed", "empty"
    score: float | None = None  # 0–100
    reason: str | None = None
    cached: bool = False

    def as_dict(self) -> dict:
        return {k: v for k, v in (("status", self.status), ("score", self.score), ("reason", self.reason)) if v is not None}


class Client:
    """One requests session per thread, with urllib3 retrying failures with exponential backoff."""

    def __init__(self, config: JudgeConfig):
        self.config = config
        self.key = config.api_key()
        self.local = threading.local()

    def session(self):
        if getattr(self.local, "session", None) is None:
            import requests
            from requests.adapters import HTTPAdapter
            from urllib3.util.retry import Retry

            retry = Retry(total=self.config.retries, connect=self.config.retries, read=self.config.retries,
                          status=self.config.retries, backoff_factor=self.config.backoff_s,
                          status_forcelist=RETRY_STATUSES, allowed_methods=None,  # POST too: judging is idempotent
                          respect_retry_after_header=True, raise_on_status=True)
            session = requests.Session()
            session.mount("http://", HTTPAdapter(max_retries=retry))
            session.mount("https://", HTTPAdapter(max_retries=retry))
            if self.key:
                session.headers["Authorization"] = f"Bearer {self.key}"
            self.local.session = session
        return self.local.session

    def ask(self, prompt: str) -> str:
        """The judge's reply text; raises RuntimeError with a one-line reason when none came back
        (the reason lands in report.md: the URL's credentials and the key are masked in it)."""
        from instruct_data.redact import redact_text, url_secrets

        try:
            return self._ask(prompt)
        except RuntimeError as exc:
            raise RuntimeError(redact_text(str(exc), [*url_secrets(self.config.url), self.key or ""])) from None

    def _ask(self, prompt: str) -> str:
        import requests

        body = {"model": self.config.model, "messages": [{"role": "user", "content": prompt}],
                "temperature": 0, "max_tokens": self.config.max_tokens}
        try:
            response = self.session().post(self.config.endpoint(), json=body, timeout=self.config.timeout_s)
            response.raise_for_status()
            data = response.json()
        except requests.exceptions.JSONDecodeError:  # before RequestException, which it also is
            raise RuntimeError("the reply is not JSON") from None
        except requests.exceptions.RetryError as exc:
            raise RuntimeError(f"gave up after {self.config.retries} retries: {_last_line(exc)}") from None
        except requests.exceptions.Timeout:
            raise RuntimeError(f"timed out after {self.config.timeout_s:g} s ({self.config.retries} retries)") from None
        except requests.exceptions.RequestException as exc:
            if "timeout" in str(exc).lower():  # urllib3 reports exhausted read retries as a connection error
                raise RuntimeError(f"timed out after {self.config.timeout_s:g} s ({self.config.retries} retries)") from None
            raise RuntimeError(_last_line(exc)) from None
        try:
            content = data["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise RuntimeError("the reply is not a chat completion (no choices[0].message.content)") from None
        if not isinstance(content, str):
            raise RuntimeError("the reply's message content is not text")
        return content


def _last_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[-1][:300] if text else type(exc).__name__


def judge(tasks: list[Task], config: JudgeConfig, rubrics: Rubrics,
          on_done: Callable[[int], None] | None = None) -> tuple[list[Verdict], dict]:
    """One Verdict per task, and counts: ok, unparsed, failed, empty, cached, asked."""
    cache = Cache(Path(config.cache_path) if config.cache_path else default_cache_path())
    client = Client(config)
    verdicts: list[Verdict | None] = [None] * len(tasks)
    pending: dict[str, list[int]] = {}  # cache key -> tasks asking the same thing
    prompts: dict[str, tuple[str, Rubric]] = {}
    stats = {"items": len(tasks), "ok": 0, "unparsed": 0, "failed": 0, "empty": 0, "cached": 0, "asked": 0,
             "cache": str(cache.path)}
    try:
        for index, task in enumerate(tasks):
            rubric = rubrics.for_category(task.category)
            if not task.answer.strip():
                verdicts[index] = Verdict("empty", score=0.0, reason="empty answer: scored 0 without asking")
                continue
            key = cache_key(task.question, task.reference, task.answer, config.model, rubric,
                            redact_url(config.endpoint()))  # the cache never holds a credential, even hashed
            reply = cache.get(key)
            if reply is not None and parse_score(reply, rubric.scale)[0] is not None:
                verdicts[index] = _verdict(reply, rubric, cached=True)
                continue  # (an unreadable reply a cache of an older idata kept is asked again)
            pending.setdefault(key, []).append(index)
            prompts[key] = (rubric.render(task.question, task.reference, task.answer), rubric)
        if on_done:
            on_done(len(tasks) - sum(len(v) for v in pending.values()))
        stats["asked"] = len(pending)  # distinct prompts sent; urllib3's retries come on top
        for key, reply, exc in ask_all(client, {key: prompts[key][0] for key in pending}, config.concurrency):
            if exc is not None:
                verdict = Verdict("failed", reason=str(exc))
            else:
                verdict = _verdict(reply, prompts[key][1], cached=False)
                if verdict.status == "ok":  # an unreadable reply is asked again next run, never reused
                    cache.put(key, config.model, reply)
            for index in pending[key]:
                verdicts[index] = verdict
            if on_done:
                on_done(len(pending[key]))
    finally:
        cache.close()
    for verdict in verdicts:
        stats[verdict.status] += 1
        stats["cached"] += verdict.cached
    return verdicts, stats  # type: ignore[return-value]


def ask_all(client: Client, prompts: dict[str, str], concurrency: int):
    """Yield (key, reply, None) or (key, None, RuntimeError) for every prompt, `concurrency` at a time.

    Daemon threads, not a ThreadPoolExecutor: the executor joins its threads at exit, so a judge
    that accepts connections and never answers held Ctrl-C for minutes (timeout x retries). Here
    the main thread waits on a queue, which a signal interrupts at once, and the threads still
    blocked on the dead judge do not keep the process alive."""
    import queue

    todo: queue.SimpleQueue = queue.SimpleQueue()
    done: queue.SimpleQueue = queue.SimpleQueue()
    for key in prompts:
        todo.put(key)

    def work() -> None:
        while True:
            try:
                key = todo.get_nowait()
            except queue.Empty:
                return
            try:
                done.put((key, client.ask(prompts[key]), None))
            except RuntimeError as exc:
                done.put((key, None, exc))
            except Exception as exc:  # noqa: BLE001 - one request's bug is that verdict's failure, not a hang
                done.put((key, None, RuntimeError(f"{type(exc).__name__}: {exc}")))

    for n in range(min(max(1, concurrency), len(prompts))):
        threading.Thread(target=work, name=f"judge-{n}", daemon=True).start()
    for _ in range(len(prompts)):
        yield done.get()


def _verdict(reply: str, rubric: Rubric, *, cached: bool) -> Verdict:
    score, why = parse_score(reply, rubric.scale)
    if score is None:
        return Verdict("unparsed", reason=f"{why}: {reply.strip()[:200]!r}", cached=cached)
    return Verdict("ok", score=score, cached=cached)


# ---------------------------------------------------------------- a benchmark's predictions


def judge_rows(rows: list[dict], config: JudgeConfig, rubrics: Rubrics, *, resamples: int, seed: int,
               on_done: Callable[[int], None] | None = None) -> dict:
    """Judge every prediction (and base prediction) in `rows`, in place (`judge`, `base_judge`);
    the judge block of results.json: settings, counts and the score per category with intervals."""
    from instruct_data.evaluation.aggregate import paired_value_delta, summarize_value

    sides = [("prediction", "judge")] + ([("base_prediction", "base_judge")] if rows and "base_prediction" in rows[0] else [])
    tasks = [Task(question=row.get("question") or row["prompt"], reference=row.get("reference"),
                  answer=row.get(prediction) or "", category=row.get("category"))
             for prediction, _ in sides for row in rows]
    verdicts, stats = judge(tasks, config, rubrics, on_done=on_done)
    for offset, (_, key) in enumerate(sides):
        for row, verdict in zip(rows, verdicts[offset * len(rows):(offset + 1) * len(rows)]):
            row[key] = verdict.as_dict()
    opts = dict(resamples=resamples, seed=seed)

    def score(key):
        return lambda row: row[key].get("score")

    block = {**config.describe(), "rubric": rubrics.describe(), "counts": stats,
             "model": summarize_value(rows, score("judge"), name="judge", **opts)}
    if len(sides) == 2:
        block["base"] = summarize_value(rows, score("base_judge"), name="judge", **opts)
        block["delta"] = paired_value_delta(rows, score("judge"), score("base_judge"), name="judge", **opts)
        block["worse_categories"] = [c for c, d in block["delta"].items() if c != "overall" and d["worse"]]
    problems = [{"id": row["id"], "answer": "base" if key == "base_judge" else "tuned", **row[key]}
                for _, key in sides for row in rows if row[key]["status"] in ("unparsed", "failed")]
    block["problems"] = problems[:20]  # the first few, with the judge's reply or the error
    return block


def scored_nothing(block: dict) -> bool:
    """Answers were sent to the judge and not one verdict came back readable: the run failed."""
    counts = block["counts"]
    return counts["ok"] == 0 and counts["items"] > counts["empty"]


def judge_summary_line(block: dict) -> str:
    counts = block["counts"]
    return (f"{counts['ok']} scored, {counts['unparsed']} unreadable, {counts['failed']} failed, "
            f"{counts['empty']} empty answers (0), {counts['cached']} from the cache, {counts['asked']} asked")
