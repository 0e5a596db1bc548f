"""Knowledge retained: multiple-choice accuracy by option log-likelihood, base versus tuned.

Each item becomes one prompt. By default it is written exactly as lm-evaluation-harness's
`cmmlu` and `ceval-valid` tasks write it for a base model (no chat template, which is also how
OpenCompass scores base models), so accuracies compare with published C-Eval and CMMLU numbers:

    以下是关于农学的单项选择题，请直接给出正确答案的选项。\n\n      (C-Eval: 以下是中国关于…的单项选择题，请选出其中的正确答案。)
    {shot question}\nA. …\nB. …\nC. …\nD. …\n答案： B\n\n     (each --shots example, answered)
    {question}\nA. …\nB. …\nC. …\nD. …\n答案：

and each option is scored as lm-eval's continuation, `" A"` (its `target_delimiter`, a space).
The subject is named in Chinese, by the benchmark's own names (`data/eval/mc_subjects.yaml`).
With `--template NAME` the prompt is rendered with that template instead, by the same
`render_prompt` the generation path uses (few-shot examples are earlier rounds of the
conversation), and the option follows the template's answer slot directly, as lm-eval scores
with a chat template. The model is not asked to generate: every option's continuation is scored
by the summed log-probability of its tokens after the prompt, as lm-eval's `multiple_choice`
tasks and OpenCompass's PPL evaluators do.

- `--choice-format letter` (default, as lm-eval's `ceval-valid` and `cmmlu` tasks): the prompt
  lists the options and ends with 答案：; the continuations are the letters A–D.
- `--choice-format text`: the same prompt; the continuations are the options' own texts.

Two accuracies, the two lm-eval reports (`lm_eval/api/task.py`, `process_results` for
`multiple_choice`): `accuracy` picks the option with the largest summed log-likelihood (lm-eval
`acc`); `accuracy_norm` divides each sum by the option's length in characters first (lm-eval
`acc_norm`, `completion_len = len(choice)`), which removes the bias towards short options in
text mode. With letters every continuation has one character, and the two are equal.

Tokens are split as lm-eval does (`_encode_pair`): whitespace at the end of the context moves
into the continuation (a template ending in `Answer: ` scores `" A"`, one token `ĠA` in a GPT-2
or Qwen vocabulary, never a lone space token and then `A`); the context is encoded alone, the
context + continuation together, and the continuation is what follows the context's length in
the joint encoding (so a tokenizer that merges across the boundary still scores the
continuation's own text). `tests/test_eval_lm_eval.py` checks every option's log-likelihood
against `lm_eval` itself.
The special tokens before the prompt (a BOS) follow the rule training and generation share
(`instruct_data.tokens.PromptPrefix`). A prompt longer than the model's window loses its
start, never the continuation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from instruct_data.evaluation.aggregate import (DEFAULT_RESAMPLES, DEFAULT_SEED, OVERALL, paired_value_delta,
                                                summarize_value)
from instruct_data.evaluation.choices import LETTERS, ChoiceItem, ChoiceSet
from instruct_data.evaluation.generation import OutOfMemory
from instruct_data.schema import Turn
from instruct_data.templates import AnyTemplate, render_prompt
from instruct_data.tokens import PromptPrefix, encode_texts

CHOICE_FORMATS = ("letter", "text")
# The subject header of each benchmark's own prompt (and lm-eval's task descriptions).
HEADERS = {"cmmlu": "以下是关于{subject}的单项选择题，请直接给出正确答案的选项。\n\n",
           "ceval": "以下是中国关于{subject}的单项选择题，请选出其中的正确答案。\n\n"}
HEADER = HEADERS["cmmlu"]
HEADER_NO_SUBJECT = "以下是单项选择题，请直接给出正确答案的选项。\n\n"
LM_EVAL = "lm-eval"  # the default prompt: plain text, as lm-eval and OpenCompass prompt a base model
TARGET_DELIMITER = " "  # lm-eval's, between 答案： and the option in a plain prompt


@dataclass
class Scored:
    logliks: list[float]  # one per option, summed over its tokens
    tokens: list[int]  # continuation tokens per option


# ---------------------------------------------------------------- prompts


def question_block(item: ChoiceItem) -> str:
    options = "".join(f"\n{letter}. {item.options[letter]}" for letter in LETTERS)
    return f"{item.question}{options}\n答案："


@functools.cache
def subject_names() -> dict[str, dict[str, str]]:
    """{"ceval": {slug: 中文名}, "cmmlu": {...}}: the benchmarks' own Chinese subject names."""
    import yaml

    from instruct_data.evaluation.benchmarks import data_dir

    with open(data_dir() / "mc_subjects.yaml", encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def subject_name(subject: str | None, style: str = "cmmlu") -> str:
    """`chinese_history` -> 中国历史 (the benchmark's own name; the other benchmark's if only it
    has one); a subject already in Chinese, or unknown, as it is."""
    slug = (subject or "").strip()
    names = subject_names()
    for table in (names.get(style) or {}, *(t for s, t in names.items() if s != style)):
        if slug in table:
            return table[slug]
    return slug.replace("_", " ")


def header_for(subject: str | None, style: str = "cmmlu") -> str:
    name = subject_name(subject, style)
    return HEADERS.get(style, HEADER).format(subject=name) if name else HEADER_NO_SUBJECT


def build_prompt(item: ChoiceItem, template: AnyTemplate | None, shots: list[ChoiceItem],
                 style: str = "cmmlu") -> str:
    """The subject's header, each shot answered, then the question: as lm-eval writes it for a
    base model (`template` None), or rendered with the template, each shot a finished round."""
    header = header_for(item.subject, style)
    if template is None:
        answered = "".join(f"{question_block(shot)}{TARGET_DELIMITER}{shot.answer}\n\n" for shot in shots)
        return header + answered + question_block(item)
    blocks = [question_block(shot) for shot in shots] + [question_block(item)]
    blocks[0] = header + blocks[0]
    history = [(Turn(role="user", text=text), Turn(role="assistant", text=shot.answer))
               for text, shot in zip(blocks, shots)]
    return render_prompt(template, history, Turn(role="user", text=blocks[-1]))


def choices(item: ChoiceItem, choice_format: str) -> list[str]:
    """The options as lm-eval's `doc_to_choice` gives them: the letters, or the options' texts."""
    return list(LETTERS) if choice_format == "letter" else [item.options[letter] for letter in LETTERS]


def continuations(item: ChoiceItem, choice_format: str, delimiter: str = "") -> list[str]:
    """What is scored after the prompt: each choice after the delimiter (a space in a plain prompt)."""
    return [delimiter + choice for choice in choices(item, choice_format)]


def shots_for(item: ChoiceItem, dev: dict, k: int) -> list[ChoiceItem]:
    """The first k dev examples of the item's subject (C-Eval's and CMMLU's five-shot convention)."""
    return (dev.get(item.subject) or [])[:k] if k else []


# ---------------------------------------------------------------- scoring


def encode_pairs(tokenizer, pairs: list[tuple[str, str]], prefix: PromptPrefix | None = None,
                 max_length: int | None = None) -> list[tuple[list[int], int]]:
    """(input ids, continuation length) per (context, continuation), split as lm-eval splits it.

    The context's special tokens follow the rule generation and training share (`prefix`); the
    texts themselves are tokenized without special tokens, as `idata eval` tokenizes prompts."""
    prefix = prefix or PromptPrefix(tokenizer)
    pairs = [_move_trailing_space(ctx, cont) for ctx, cont in pairs]
    texts = [text for ctx, cont in pairs for text in (ctx, ctx + cont)]
    found = [e.ids for e in encode_texts(tokenizer, texts)]
    out = []
    for index, (ctx, cont) in enumerate(pairs):
        context_ids, whole = found[2 * index], found[2 * index + 1]
        cont_ids = whole[len(context_ids):]
        if not cont_ids:  # the joint encoding swallowed the continuation into the context's last token
            cont_ids = encode_texts(tokenizer, [cont])[0].ids
        ids = prefix.ids_for(ctx) + context_ids + cont_ids
        if max_length and len(ids) > max_length:
            ids = ids[len(ids) - max_length:]  # the prompt's start goes; the continuation stays whole
        out.append((ids, len(cont_ids)))
    return out


def _move_trailing_space(context: str, continuation: str) -> tuple[str, str]:
    """lm-eval's rule: whitespace that ends the context belongs to the continuation (`Answer: ` +
    `A` is scored as `Answer:` + ` A`, the way a tokenizer that glues spaces to words splits it)."""
    spaces = len(context) - len(context.rstrip())
    if spaces and context.strip():
        return context[:-spaces], context[-spaces:] + continuation
    return context, continuation


def loglikelihoods(model, tokenizer, pairs: list[tuple[str, str]], *, batch_size: int = 16,
                   prefix: PromptPrefix | None = None,
                   on_batch: Callable[[int], None] | None = None) -> list[tuple[float, int]]:
    """(summed log-probability, tokens) of each continuation after its context, batched."""
    max_length = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    encoded = encode_pairs(tokenizer, pairs, prefix, max_length)
    results: list[tuple[float, int] | None] = [None] * len(encoded)
    # One-token continuations after the same context (the letters A–D) need one forward pass
    # between them: the context's last logits score every letter (lm-eval groups them the same way).
    shared: dict[tuple[int, ...], list[tuple[int, int]]] = {}
    for index, (ids, n) in enumerate(encoded):
        if n == 1:
            shared.setdefault(tuple(ids[:-1]), []).append((index, ids[-1]))
    contexts = [(list(context), 0) for context in shared]
    weights = [len(options) for options in shared.values()]  # progress counts (context, option) pairs
    for context, logprobs in zip(shared, _batched(model, tokenizer, contexts, batch_size, on_batch, _last_logprobs,
                                                  weights)):
        for index, token in shared[context]:
            results[index] = (float(logprobs[token]), 1)
    rest = [i for i, (_, n) in enumerate(encoded) if n != 1]
    for index, value in zip(rest, _batched(model, tokenizer, [encoded[i] for i in rest], batch_size, on_batch,
                                            _score_batch)):
        results[index] = value
    return results  # type: ignore[return-value]


def _batched(model, tokenizer, sequences: list[tuple[list[int], int]], batch_size: int, on_batch, score,
             weights: list[int] | None = None) -> list:
    """score(model, tokenizer, batch) over batches, longest first (little padding, and memory
    trouble shows on the first batch); the results in the sequences' order."""
    import torch

    order = sorted(range(len(sequences)), key=lambda i: -len(sequences[i][0]))
    results: list = [None] * len(sequences)
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        try:
            scored = score(model, tokenizer, [sequences[i] for i in batch])
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            raise OutOfMemory(f"out of GPU memory scoring {len(batch)} options of up to {len(sequences[batch[0]][0])} "
                              f"tokens: try --batch-size {max(1, batch_size // 2)}") from None
        for index, value in zip(batch, scored):
            results[index] = value
        if on_batch:
            on_batch(sum(weights[i] for i in batch) if weights else len(batch))
    return results


def _left_padded(tokenizer, batch: list[tuple[list[int], int]]):
    """(input ids, attention mask, position ids): left padding puts every sequence's end at the
    last position, so only the last few logits are needed."""
    import torch

    width = max(len(ids) for ids, _ in batch)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, (ids, _) in enumerate(batch):
        input_ids[row, width - len(ids):] = torch.tensor(ids, dtype=torch.long)
        mask[row, width - len(ids):] = 1
    return input_ids, mask, (mask.cumsum(-1) - 1).clamp(min=0)


def _last_logprobs(model, tokenizer, batch: list[tuple[list[int], int]]) -> list:
    """The next-token log-probabilities after each context."""
    import torch

    input_ids, mask, positions = _left_padded(tokenizer, batch)
    device = model.device
    with torch.inference_mode():
        logits = _forward(model, input_ids.to(device), mask.to(device), positions.to(device), 1)
    return list(torch.log_softmax(logits[:, -1].float(), dim=-1).cpu())


def _score_batch(model, tokenizer, batch: list[tuple[list[int], int]]) -> list[tuple[float, int]]:
    """Each sequence's last n tokens (its continuation) scored from the logits before them."""
    import torch

    input_ids, mask, positions = _left_padded(tokenizer, batch)
    width = input_ids.shape[1]
    keep = max(n for _, n in batch) + 1  # position t's logits predict token t + 1
    device = model.device
    with torch.inference_mode():
        logits = _forward(model, input_ids.to(device), mask.to(device), positions.to(device), keep)
    logprobs = torch.log_softmax(logits.float(), dim=-1).cpu()
    out = []
    for row, (ids, n) in enumerate(batch):
        targets = input_ids[row, width - n:]
        predicted = logprobs[row, keep - 1 - n:keep - 1]  # the n positions before each target
        out.append((float(predicted.gather(-1, targets[:, None]).sum()), n))
    return out


def _forward(model, input_ids, mask, positions, keep: int):
    try:
        return model(input_ids=input_ids, attention_mask=mask, position_ids=positions, logits_to_keep=keep).logits
    except TypeError:  # an older or remote-code model without logits_to_keep: slice afterwards
        return model(input_ids=input_ids, attention_mask=mask, position_ids=positions).logits[:, -keep:]


def score_items(model, tokenizer, items: list[ChoiceItem], prompts: list[str], choice_format: str, *,
                batch_size: int, prefix: PromptPrefix | None = None, delimiter: str = "",
                on_batch: Callable[[int], None] | None = None) -> list[Scored]:
    pairs = [(prompt, cont) for item, prompt in zip(items, prompts)
             for cont in continuations(item, choice_format, delimiter)]
    flat = loglikelihoods(model, tokenizer, pairs, batch_size=batch_size, prefix=prefix, on_batch=on_batch)
    n = len(LETTERS)
    return [Scored(logliks=[ll for ll, _ in flat[i * n:(i + 1) * n]], tokens=[t for _, t in flat[i * n:(i + 1) * n]])
            for i in range(len(items))]


def pick(scored: Scored, lengths: list[int]) -> tuple[str, str]:
    """(acc choice, acc_norm choice): the largest sum, and the largest sum per character."""
    best = max(range(len(LETTERS)), key=lambda i: scored.logliks[i])
    best_norm = max(range(len(LETTERS)), key=lambda i: scored.logliks[i] / max(1, lengths[i]))
    return LETTERS[best], LETTERS[best_norm]


# ---------------------------------------------------------------- a whole benchmark


@dataclass
class ChoiceRun:
    template: AnyTemplate | None  # None: the plain prompt lm-eval and OpenCompass give a base model
    prefix: PromptPrefix | None = None  # None: the tokenizer's own special tokens before each prompt
    choice_format: str = "letter"
    shots: int = 0
    batch_size: int = 16
    compare_base: bool = False
    resamples: int = DEFAULT_RESAMPLES
    seed: int = DEFAULT_SEED


def evaluate_choices(model, tokenizer, choice_set: ChoiceSet, run: ChoiceRun,
                     on_batch: Callable[[int], None] | None = None) -> tuple[list[dict], dict]:
    """(one row per item, the summary): accuracy per subject, and base versus tuned with --compare-base."""
    items = choice_set.items
    prompts = [build_prompt(item, run.template, shots_for(item, choice_set.dev, run.shots), choice_set.style)
               for item in items]
    # lm-eval puts its target delimiter (a space) before each option in a plain prompt, none after a chat template.
    delimiter = TARGET_DELIMITER if run.template is None else ""
    score = dict(batch_size=run.batch_size, prefix=run.prefix, on_batch=on_batch, delimiter=delimiter)
    tuned = score_items(model, tokenizer, items, prompts, run.choice_format, **score)
    base = None
    if run.compare_base:
        with model.disable_adapter():  # peft: the same loaded weights, LoRA switched off
            base = score_items(model, tokenizer, items, prompts, run.choice_format, **score)
    rows = [_row(item, prompt, tuned[i], base[i] if base else None, run.choice_format)
            for i, (item, prompt) in enumerate(zip(items, prompts))]
    return rows, summarize_choices(rows, run)


def _row(item: ChoiceItem, prompt: str, tuned: Scored, base: Scored | None, choice_format: str) -> dict:
    lengths = [len(c) for c in choices(item, choice_format)]  # lm-eval's acc_norm: len(choice), no delimiter
    row = {"id": item.id, "subject": item.subject, "answer": item.answer, "prompt": prompt}
    for prefix, scored in (("", tuned), ("base_", base)):
        if scored is None:
            continue
        choice, choice_norm = pick(scored, lengths)
        row.update({f"{prefix}pick": choice, f"{prefix}pick_norm": choice_norm,
                    f"{prefix}correct": choice == item.answer, f"{prefix}correct_norm": choice_norm == item.answer,
                    f"{prefix}logliks": dict(zip(LETTERS, (round(v, 5) for v in scored.logliks))),
                    f"{prefix}tokens": dict(zip(LETTERS, scored.tokens))})
    return row


def _percent(key: str):
    return lambda row: 100.0 * row[key] if key in row else None


def summarize_choices(rows: list[dict], run: ChoiceRun) -> dict:
    """accuracy and accuracy_norm (0–100) per subject with intervals; with a base, its column and
    the paired delta per subject, `forgot` where the whole interval is below zero."""
    opts = dict(group_key="subject", resamples=run.resamples, seed=run.seed)
    summary = {"model": {m: summarize_value(rows, _percent(k), name=f"mc/{m}", **opts)
                         for m, k in (("accuracy", "correct"), ("accuracy_norm", "correct_norm"))}}
    if run.compare_base:
        summary["base"] = {m: summarize_value(rows, _percent(f"base_{k}"), name=f"mc/{m}", **opts)
                           for m, k in (("accuracy", "correct"), ("accuracy_norm", "correct_norm"))}
        delta = paired_value_delta(rows, _percent("correct"), _percent("base_correct"), name="mc/accuracy", **opts)
        for stats in delta.values():
            stats["forgot"] = stats.pop("worse")
        summary["delta"] = {"accuracy": delta}
        summary["forgot_subjects"] = [s for s, d in delta.items() if s != OVERALL and d["forgot"]]
        summary["forgot_overall"] = delta[OVERALL]["forgot"]
    return summary
