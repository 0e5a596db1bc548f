"""`idata to-multiturn`."""

from __future__ import annotations

import re

import click

from instruct_data.cli.common import console, input_options, print_json, reject_lines, row_progress, strictness_options
from instruct_data.cli.summary import column_lines
from instruct_data.cli.convert_cmd import reports_errors
from instruct_data.outputs_guard import guard_output
from instruct_data.templates import DEFAULT_TEMPLATE, TEMPLATES


@click.command("to-multiturn")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--out", "-o", required=True, type=click.Path(),
              help="Folder to write train.jsonl, conversations.jsonl, rejects.jsonl and manifest.json to.")
@click.option("--template", "-t", default=DEFAULT_TEMPLATE, show_default=True, type=click.Choice(sorted(TEMPLATES)),
              help="How a dialogue and its history become context/target (the same as at build and eval).")
@click.option("--mode", default="every-turn", show_default=True, type=click.Choice(["every-turn", "last-turn"]),
              help="every-turn: one record per assistant reply, each with all earlier rounds; "
                   "last-turn: one record per dialogue.")
@click.option("--max-history-turns", type=click.IntRange(min=0), default=None, metavar="N",
              help="Keep at most the N most recent earlier rounds (question + reply) as history.")
@click.option("--max-context-chars", type=click.IntRange(min=1), default=None, metavar="N",
              help="Budget for context + target in characters: the oldest whole rounds are dropped until "
                   "the record fits; a question and reply that alone exceed it are rejected.")
@click.option("--max-context-tokens", type=click.IntRange(min=1), default=None, metavar="N",
              help="The same budget in tokens of --tokenizer (no special tokens counted).")
@click.option("--tokenizer", default=None, metavar="NAME_OR_PATH",
              help="Tokenizer for --max-context-tokens: a local model folder or a hub name.")
@click.option("--system", default=None, help="System text to add (or override) where the template has a slot.")
@click.option("--reasoning", default="keep", show_default=True, type=click.Choice(["keep", "drop-history", "drop"]),
              help="Reasoning traces (<think>, reasoning_content): keep them, drop earlier rounds' (as Qwen3 "
                   "renders at inference), or drop them all (docs/tools.md).")
@click.option("--group-by", default=None, metavar="FIELD",
              help="Rows sharing this field become one dialogue (rows without it stay one-turn dialogues).")
@click.option("--order-by", default=None, metavar="FIELD",
              help="With --group-by: the field that orders a dialogue's rows (numbers by value).")
@click.option("--workers", type=click.IntRange(min=1), default=None, metavar="N",
              help="Processes for large JSON-lines inputs (default: one per CPU, at most 4; 1: no workers).")
@input_options
@strictness_options
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON instead of a summary.")
@reports_errors
def multiturn_command(inputs, out, template, mode, max_history_turns, max_context_chars, max_context_tokens,
                      tokenizer, system, reasoning, group_by, order_by, workers, fmt, mapping, encoding, strict,
                      max_reject_rate, as_json):
    """Turn dialogues into multi-turn context/target records whose context carries the history.

    INPUTS are files, folders or globs in any dialogue format the readers know: Belle
    multiturn_chat (`Human:…\\nAssistant:` transcripts), Belle train_3.5M_CN / ShareGPT
    `conversations`, OpenAI `messages`, alpaca or prompt/response rows with `history`; with
    tool calls and reasoning traces too (glaive, OpenAI tool_calls, Hermes <tool_call>): then
    every assistant turn, a call included, is a record (docs/tools.md).
    OUT gets train.jsonl, conversations.jsonl, rejects.jsonl and manifest.json; the ledger
    counts dialogues (read = written + rejected) and the manifest says how many records each
    dialogue produced.

    \b
    Examples:
      idata to-multiturn multiturn_chat_0.8M.json --out mt --template chatglm
      idata to-multiturn train_3.5M_CN.json --out mt --mode last-turn --max-context-chars 2048
      idata to-multiturn chats.jsonl --out mt --max-context-tokens 1024 --tokenizer ./my-model
      idata to-multiturn glaive_toolcall_zh_demo.json --out mt --template chatml --reasoning drop-history
      idata to-multiturn qa.xlsx --map instruction=问题,output=答案 --group-by 会话 --order-by 轮次 --out mt
    """
    from pydantic import ValidationError

    from instruct_data.formats import format_name, parse_mapping
    from instruct_data.multiturn import MultiturnSettings
    from instruct_data.multiturn.run import to_multiturn

    try:
        settings = MultiturnSettings(mode=mode, max_history_turns=max_history_turns,
                                     max_context_chars=max_context_chars, max_context_tokens=max_context_tokens,
                                     tokenizer=tokenizer, reasoning=reasoning)
    except ValidationError as exc:
        problems = "; ".join(item["msg"].removeprefix("Value error, ") for item in exc.errors())
        # The settings speak of fields (max_context_tokens); the user typed options (--max-context-tokens).
        problems = re.sub(r"\b(max_context_chars|max_context_tokens|tokenizer)\b",
                          lambda m: "--" + m.group(1).replace("_", "-"), problems)
        raise click.UsageError(problems) from None
    if order_by and not group_by:
        raise click.UsageError("--order-by needs --group-by")
    fmt = format_name(fmt) if fmt else None  # an unknown name fails before any file is read
    # Written into a fresh folder, swapped in at --out once complete (never a mix of runs).
    with guard_output(out, inputs, command="to-multiturn", staged=True) as work, \
            row_progress("expanding dialogues") as advance:
        manifest = to_multiturn(inputs, work, template=template, settings=settings, system=system, fmt=fmt,
                                mapping=parse_mapping(mapping), encoding=encoding, group_by=group_by,
                                order_by=order_by, strict=strict, max_reject_rate=max_reject_rate,
                                workers=workers, on_dialogue=advance)
    if as_json:
        print_json(manifest)
        return
    _summary(manifest, out)


def _summary(manifest, out) -> None:
    from rich.markup import escape

    def say(text: str) -> None:
        console.print(text, soft_wrap=True)

    out = escape(str(out))
    totals, extra = manifest["counts"]["totals"], manifest["multiturn"]
    say(f"[green]wrote[/green] {out}/train.jsonl: {extra['records_written']:,} records from "
        f"{totals['written']:,} dialogues ({totals['read']:,} read, {totals['rejected']:,} rejected)")
    histogram = ", ".join(f"{n}: {count:,}" for n, count in extra["records_per_dialogue"].items())
    if histogram:
        say(f"  records per dialogue  {histogram}")
    if extra["history_rounds_dropped_by_limit"] or extra["history_rounds_dropped_by_budget"]:
        say(f"  history rounds dropped  {extra['history_rounds_dropped_by_limit']:,} by --max-history-turns, "
            f"{extra['history_rounds_dropped_by_budget']:,} by the length budget")
    for line in reject_lines(manifest):
        say(line)
    for line in column_lines(manifest):
        say(line)
    say(f"  ledger: {out}/rejects.jsonl and {out}/manifest.json")
