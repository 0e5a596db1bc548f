"""Knowledge retained: multiple-choice accuracy by option log-likelihood, base versus tuned.

Each item becomes one prompt, rendered with the same template and `render_prompt` that the
generation path uses (few-shot examples from the dev split are earlier rounds of the same
conversation). The model is not asked to generate: every option's continuation is scored by
the summed log-probability of its tokens after the prompt, as lm-evaluation-harness's
`multiple_choice` tasks and OpenCompass's PPL evaluators do.

- `--choice-format letter` (default, as lm-eval's `ceval-valid` and `cmmlu` tasks): the prompt
  lists the options and ends with 答案：; the continuations are the letters A–D.
- `--choice-format text`: the same prompt; the continuations are the options' own texts.

Two accuracies, the two lm-eval reports (`lm_eval/api/task.py`, `process_results` for
`multiple_choice`): `accuracy` picks the option with the largest summed log-likelihood (lm-eval
`acc`); `accuracy_norm` divides each sum by the option's length in characters first (lm-eval
`acc_norm`, `completion_len = len(choice)`), which removes the bias towards short options in
text mode. With letters every continuation has one character, and the two are equal.

Tokens are split as lm-eval does: the context is encoded alone, the context + continuation
together, and the continuation is what follows the context's length in the joint encoding
(so a tokenizer that merges across the boundary still scores the continuation's own text).
The special tokens before the prompt (a BOS) follow the rule training and generation share
(`instruct_data.tokens.PromptPrefix`). A prompt longer than the model's window loses its
start, never the continuation.
"""

from __future__ import annotations

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
HEADER = "以下是关于{subject}的单项选择题，请直接给出正确答案的选项。\n\n"
HEADER_NO_SUBJECT = "以下是单项选择题，请直接给出正确答案的选项。\n\n"


@dataclass
class Scored:
    logliks: list[float]  # one per option, summed over its tokens
    tokens: list[int]  # continuation tokens per option


# ---------------------------------------------------------------- prompts


def question_block(item: ChoiceItem) -> str:
    options = "".join(f"\n{letter}. {item.options[letter]}" for letter in LETTERS)
    return f"{item.question}{options}\n答案："


def build_prompt(item: ChoiceItem, template: AnyTemplate, shots: list[ChoiceItem]) -> str:
    """The subject's header, then each shot as a finished round, then the question, in the template."""
    subject = (item.subject or "").replace("_", " ").strip()
    header = HEADER.format(subject=subject) if subject else HEADER_NO_SUBJECT
    blocks = [question_block(shot) for shot in shots] + [question_block(item)]
    blocks[0] = header + blocks[0]
    history = [(Turn(role="user", text=text), Turn(role="assistant", text=shot.answer))
               for text, shot in zip(blocks, shots)]
    return render_prompt(template, history, Turn(role="user", text=blocks[-1]))


def continuations(item: ChoiceItem, choice_format: str) -> list[str]:
    return list(LETTERS) if choice_format == "letter" else [item.options[letter] for letter in LETTERS]


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
                batch_size: int, prefix: PromptPrefix | None = None,
                on_batch: Callable[[int], None] | None = None) -> list[Scored]:
    pairs = [(prompt, cont) for item, prompt in zip(items, prompts) for cont in continuations(item, choice_format)]
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
    template: AnyTemplate
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
    prompts = [build_prompt(item, run.template, shots_for(item, choice_set.dev, run.shots)) for item in items]
    score = dict(batch_size=run.batch_size, prefix=run.prefix, on_batch=on_batch)
    tuned = score_items(model, tokenizer, items, prompts, run.choice_format, **score)
    base = None
    if run.compare_base:
        with model.disable_adapter():  # peft: the same loaded weights, LoRA switched off
            base = score_items(model, tokenizer, items, prompts, run.choice_format, **score)
    rows = [_row(item, prompt, tuned[i], base[i] if base else None, run.choice_format)
            for i, (item, prompt) in enumerate(zip(items, prompts))]
    return rows, summarize_choices(rows, run)


def _row(item: ChoiceItem, prompt: str, tuned: Scored, base: Scored | None, choice_format: str) -> dict:
    lengths = [len(c) for c in continuations(item, choice_format)]
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
