"""Templates: how a Conversation becomes a context (the prompt) and a target (the reply).

A template is data, not code: a few format strings per model family. The same template
renders training data, multi-turn history, and the prompts at evaluation, so training and
inference never disagree.

    context = prefix + system block + every earlier round + the current question
    target  = the last reply

Each round is `user.format(i=..., text=..., input=...)` followed, for earlier rounds, by
`assistant.format(text=...)`. `user` ends where the assistant's reply begins. Tools, tool calls,
tool results and reasoning traces are written in the one format `tool_format` documents.

What is trained is taken from the template itself (`training_examples`): reply k is the text
that rendering the dialogue up to reply k adds to the prompt for it,

    render(turns[:k+1]) minus render(turns[:k], add_generation_prompt=True)

so a model's own chat template trains what it renders (GLM-4's `\n` before a reply, Qwen3's
empty think block, Llama 3's trimmed replies), token for token. A template that renders a
turn differently once later turns follow (Qwen3 drops earlier traces) trains one example per
reply, each rendered as inference renders it (docs/training.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cached_property

from instruct_data.schema import Conversation, Turn, is_trained, record_replies
from instruct_data.tool_format import (DEFAULT_REASONING, openai_tool, reply_text, results_text, system_text,
                                       think_text)


@dataclass(frozen=True)
class Template:
    name: str
    description: str
    user: str  # "{text}" (and "{i}", the 1-based round, "{input}" the rendered input block)
    assistant: str  # "{text}" for a reply inside the history
    system: str = ""  # "{system}" block; empty: the template has no system slot
    prefix: str = ""
    input: str | None = None  # "{input}" block for alpaca's input; None: input is joined to the text
    stop: tuple[str, ...] = field(default_factory=tuple)  # stop strings at generation

    def system_block(self, system: str | None) -> str:
        if not system:
            return ""
        if not self.system:
            # No system slot: the system text leads the prompt so it is never silently lost.
            return f"{system}\n"
        return self.system.format(system=system)

    def user_block(self, index: int, turn: Turn) -> str:
        if self.input is None:
            return self.user.format(i=index, text=turn.full_text, input="")
        input_block = self.input.format(input=turn.input) if turn.input else ""
        return self.user.format(i=index, text=turn.text, input=input_block)

    def assistant_block(self, text: str) -> str:
        return self.assistant.format(text=text)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["stop"] = list(self.stop)
        return data


TEMPLATES: dict[str, Template] = {
    t.name: t
    for t in [
        Template(
            name="seed",
            description="ChatGLM-Tuning: 'Instruction: …\\nInput: …\\nAnswer: ' (the default)",
            user="Instruction: {text}\n{input}Answer: ",
            input="Input: {input}\n",
            assistant="{text}\n",
            stop=("\nInstruction:",),
        ),
        Template(
            name="chatglm",
            description="ChatGLM-6B: '[Round i]\\n问：…\\n答：'",
            user="[Round {i}]\n问：{text}\n答：",
            assistant="{text}\n",
            stop=("[Round",),
        ),
        Template(
            name="belle",
            description="BELLE: 'Human: \\n…\\n\\nAssistant: \\n'",
            user="Human: \n{text}\n\nAssistant: \n",
            assistant="{text}\n\n",
            stop=("Human:",),
        ),
        Template(
            name="chatml",
            description="ChatML (Qwen): '<|im_start|>user\\n…<|im_end|>'",
            system="<|im_start|>system\n{system}<|im_end|>\n",
            user="<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n",
            assistant="{text}<|im_end|>\n",
            stop=("<|im_end|>", "<|im_start|>"),
        ),
        Template(
            name="llama3",
            description="Llama 3 instruct headers and <|eot_id|>",
            system="<|start_header_id|>system<|end_header_id|>\n\n{system}<|eot_id|>",
            user="<|start_header_id|>user<|end_header_id|>\n\n{text}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
            assistant="{text}<|eot_id|>",
            stop=("<|eot_id|>",),
        ),
        Template(
            name="glm4",
            description="GLM-4: '[gMASK]<sop><|user|>\\n…<|assistant|>\\n'",
            prefix="[gMASK]<sop>",
            system="<|system|>\n{system}",
            user="<|user|>\n{text}<|assistant|>\n",
            assistant="{text}",
            stop=("<|user|>", "<|observation|>"),
        ),
    ]
}

DEFAULT_TEMPLATE = "seed"


def get_template(name: str) -> Template:
    try:
        return TEMPLATES[name]
    except KeyError:
        known = ", ".join(TEMPLATES)
        raise ValueError(f"unknown template {name!r} (known: {known})") from None


NATIVE = "native"  # the tokenizer's own chat_template
AUTO = "auto"  # native for a chat tokenizer and conversation data, else the build's template, else seed


@dataclass(frozen=True)
class NativeTemplate:
    """A model's own `chat_template` (Jinja), rendered exactly as `apply_chat_template` renders it.

    The user message is the instruction, then a newline and the input when there is one; the
    system text, when there is one, is a system message (else the template's own default, such
    as Qwen2.5's "You are Qwen, created by Alibaba Cloud..."). Recorded in template.json with
    the Jinja source and the special tokens it reads, so `eval` and `merge` render it the same.
    """

    chat_template: str
    special_tokens: tuple[tuple[str, str], ...] = ()  # (name, token) the Jinja source may read: bos_token, ...
    name: str = NATIVE
    description: str = "the tokenizer's own chat_template (apply_chat_template)"

    @classmethod
    def from_tokenizer(cls, tokenizer) -> NativeTemplate | None:
        source = getattr(tokenizer, "chat_template", None)
        if not isinstance(source, str) or not source.strip():
            return None
        tokens = {k: str(v) for k, v in tokenizer.special_tokens_map.items() if isinstance(v, str)}
        return cls(source, tuple(sorted(tokens.items())))

    def messages(self, history: list[tuple[Turn, Turn]], question: Turn | None, system: str | None) -> list[dict]:
        found = [{"role": "system", "content": system}] if system else []
        for user, assistant in history:
            found += [{"role": "user", "content": user.full_text}, {"role": "assistant", "content": assistant.text}]
        if question is not None:
            found.append({"role": "user", "content": question.full_text})
        return found

    def render_messages(self, messages: list[dict], add_generation_prompt: bool, tools: list[dict] | None = None) -> str:
        from transformers.utils.chat_template_utils import render_jinja_template

        rendered, _ = render_jinja_template(conversations=[messages], chat_template=self.chat_template, tools=tools,
                                            add_generation_prompt=add_generation_prompt, **dict(self.special_tokens))
        return rendered[0]

    def dialogue_messages(self, steps: list[Step], traces: list[bool], system: str | None) -> list[dict]:
        """OpenAI-style messages for these steps of a dialogue: tool calls as `tool_calls`, results
        as `tool` messages, a kept trace as `reasoning_content` when the template reads one, else
        as a think block before the reply's text."""
        found = [{"role": "system", "content": system}] if system else []
        for (before, reply), trace in zip(steps, traces):
            found += [_input_message(turn) for turn in before]
            found.append(self._assistant_message(reply, trace))
        return found

    def _assistant_message(self, turn: Turn, trace: bool) -> dict:
        message = {"role": "assistant", "content": turn.text}
        if trace and turn.reasoning:
            if self.reads_reasoning:
                message["reasoning_content"] = turn.reasoning
            else:
                message["content"] = think_text(turn.reasoning) + turn.text
        if turn.tool_calls:  # only when there are calls: Llama 3.1's template tests `'tool_calls' in message`
            message["tool_calls"] = [_call_message(call) for call in turn.tool_calls]
        return message

    @cached_property
    def reads_reasoning(self) -> bool:
        """Whether the template writes a message's `reasoning_content` (Qwen3's does)."""
        return _shows(self, [{"role": "user", "content": "q"},
                             {"role": "assistant", "content": "a", "reasoning_content": _NEEDLE}])

    @cached_property
    def renders_tools(self) -> bool:
        """Whether the template writes the `tools` list it is given (GLM-4's reads it from a message instead)."""
        return _shows(self, [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
                      tools=[_probe_tool()])

    @cached_property
    def renders_calls(self) -> bool:
        """Whether the template writes an assistant message's `tool_calls`."""
        call = {"type": "function", "function": {"name": _NEEDLE, "arguments": {}}}
        return _shows(self, [{"role": "user", "content": "q"}, {"role": "assistant", "content": "", "tool_calls": [call]}],
                      tools=[_probe_tool()])

    @cached_property
    def layout(self) -> PromptLayout:
        return prompt_layout(self)

    @cached_property
    def stop(self) -> tuple[str, ...]:
        """What closes a reply in this template (`<|im_end|>`, `<|eot_id|>`), as a stop string."""
        user, reply = _PROBE[0], _PROBE[1]
        text = self.render_messages([{"role": "user", "content": user}, {"role": "assistant", "content": reply}],
                                    add_generation_prompt=False)
        closing = text[text.index(reply) + len(reply):].strip() if reply in text else ""
        return (closing,) if closing else ()

    @property
    def user(self) -> str:
        """The user block around `{text}`, as an idata template writes it (for checks that read it)."""
        return self.layout.lead + "{text}" + self.layout.tail

    def to_dict(self) -> dict:
        return {"name": self.name, "description": self.description, "chat_template": self.chat_template,
                "special_tokens": dict(self.special_tokens), "stop": list(self.stop)}

    @classmethod
    def from_dict(cls, data: dict) -> NativeTemplate:
        return cls(data["chat_template"], tuple(sorted((data.get("special_tokens") or {}).items())))


AnyTemplate = Template | NativeTemplate


def template_from_dict(data: dict) -> AnyTemplate:
    """A template recorded in template.json: an idata template or a native chat template."""
    if data.get("name") == NATIVE and "chat_template" in data:
        return NativeTemplate.from_dict(data)
    fields = set(Template.__dataclass_fields__)
    data = {k: v for k, v in data.items() if k in fields}
    data["stop"] = tuple(data.get("stop") or ())
    return Template(**data)


@dataclass(frozen=True)
class PromptLayout:
    """The literal text of a template around a user's question, found by rendering probes.

    lead: what opens every user block (a round boundary: earlier rounds are dropped there);
    tail: what follows the current question's text (`\nAnswer: `, `<|im_end|>\n<|im_start|>assistant\n`);
    close: what follows a reply inside the history, before the next lead.
    """

    lead: str
    tail: str
    close: str


_PROBE = ("\ue000问一\ue000", "\ue000答一\ue000", "\ue000问二\ue000")


def _common_suffix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[len(a) - 1 - n] == b[len(b) - 1 - n]:
        n += 1
    return a[len(a) - n:]


def prompt_layout(template: AnyTemplate) -> PromptLayout:
    q1, a1, q2 = (Turn(role=r, text=t) for r, t in zip(("user", "assistant", "user"), _PROBE))
    one = render_prompt(template, [], q1)
    two = render_prompt(template, [(q1, a1)], q2)
    before, tail = one[:one.index(q1.text)], one[one.index(q1.text) + len(q1.text):]
    between = two[two.index(a1.text) + len(a1.text):two.index(q2.text)]
    lead = _common_suffix(before, between)
    return PromptLayout(lead=lead, tail=tail, close=between[:len(between) - len(lead)])


def render_prompt(template: AnyTemplate, history: list[tuple[Turn, Turn]], question: Turn,
                  system: str | None = None) -> str:
    """The context for answering `question` after the given earlier rounds."""
    if isinstance(template, NativeTemplate):
        return template.render_messages(template.messages(history, question, system), add_generation_prompt=True)
    parts = [template.prefix, template.system_block(system)]
    for index, (user, assistant) in enumerate(history, start=1):
        parts.append(template.user_block(index, user))
        parts.append(template.assistant_block(assistant.text))
    parts.append(template.user_block(len(history) + 1, question))
    return "".join(parts)


Step = tuple[list[Turn], Turn]  # an assistant turn and the turns since the one before it (a user turn, or tool results)
Pieces = list[tuple[str, bool]]  # (text, supervised): joined, the text the template renders


def steps(conversation: Conversation) -> list[Step]:
    """Each assistant turn with what came before it: a user turn, or the results of its calls."""
    found, before = [], []
    for turn in conversation.turns:
        if turn.role == "assistant":
            found.append((before, turn))
            before = []
        else:
            before.append(turn)
    return found


def kept_traces(found: list[Step], k: int, reasoning: str = DEFAULT_REASONING) -> list[bool]:
    """Which of steps 0..k keep their reasoning trace when reply k is rendered.

    keep: all; drop: none; drop-history: as Qwen3's template does at inference, the traces
    after the last user turn (the current round's tool loop), none before it.
    """
    if reasoning == "keep":
        return [True] * (k + 1)
    if reasoning == "drop":
        return [False] * (k + 1)
    last_query = max(j for j in range(k + 1) if found[j][0][0].role == "user")
    return [j >= last_query for j in range(k + 1)]


def _plain_pairs(found: list[Step], traces: list[bool]) -> list[tuple[Turn, Turn]]:
    """Steps as (user, assistant) pairs for the built-in templates: results in the user slot,
    a reply's trace and calls in its text (tool_format)."""
    pairs = []
    for (before, reply), trace in zip(found, traces):
        user = before[0] if before[0].role == "user" else Turn.model_construct(role="user", text=results_text(before))
        if reply.tool_calls or reply.reasoning:
            reply = Turn.model_construct(role="assistant", text=reply_text(reply, trace), weight=getattr(reply, "weight", None))
        pairs.append((user, reply))
    return pairs


def rounds(conversation: Conversation, reasoning: str = DEFAULT_REASONING) -> list[tuple[Turn, Turn]]:
    """The conversation as (user, assistant) pairs, oldest first (tool results in the user slot,
    calls and traces in the reply's text: tool_format)."""
    turns = conversation.turns
    if not _has_tools(conversation):
        return [(turns[i], turns[i + 1]) for i in range(0, len(turns), 2)]
    found = steps(conversation)
    return _plain_pairs(found, kept_traces(found, len(found) - 1, reasoning))


def render(conversation: Conversation, template: AnyTemplate | str = DEFAULT_TEMPLATE,
           system: str | None = None, reasoning: str = DEFAULT_REASONING) -> tuple[str, str]:
    """(context, target) for the last reply, with every earlier round as history.

    `system` overrides the conversation's own system text when given. The target is the reply's
    text, with its trace and calls written as tool_format writes them.
    """
    if conversation.rendered:
        # A context/target row read back: its context is already a rendered prompt.
        return conversation.turns[0].text, conversation.reply
    if isinstance(template, str):
        template = get_template(template)
    turns = conversation.turns
    if len(turns) == 2 and type(template) is Template and not _has_tools(conversation):
        # One round (most rows): render_prompt with no history, without building the rounds.
        return template.prefix + template.system_block(system or conversation.system) + template.user_block(1, turns[0]), \
            turns[1].text
    if not _has_tools(conversation):
        *history, (question, answer) = rounds(conversation)
        return render_prompt(template, history, question, system or conversation.system), answer.text
    found = steps(conversation)
    context, _ = _renders(conversation, template, system or conversation.system, reasoning, found)[-1]
    return context, reply_text(found[-1][1], reasoning != "drop")


def _through_last_trained(conversation):
    """The conversation up to its last reply not at weight 0: itself, unless replies at weight 0
    end it (schema.record_replies; one with none to train is left as it is)."""
    turns = conversation.turns
    if is_trained(turns[-1]):
        return conversation
    replies = [i for i, turn in enumerate(turns) if turn.role == "assistant"]
    trained = record_replies(turns, every_turn=False)
    return conversation.model_copy(update={"turns": turns[:replies[trained[0]] + 1]}) if trained else conversation


def _has_tools(conversation) -> bool:
    # The build's fast path passes formats.plainrow.PlainConversation (single-turn, no tools) too.
    return getattr(conversation, "has_tools", False)


def training_record(conversation: Conversation, template: AnyTemplate | str = DEFAULT_TEMPLATE,
                    system: str | None = None) -> dict[str, str]:
    """One line of train.jsonl for the conversation's last reply not at weight 0 (the turns after
    it are history nothing trains on): context, target and bookkeeping."""
    context, target = render(_through_last_trained(conversation), template, system=system)  # passes a rendered context through
    record = {"context": context, "target": target, "id": conversation.id, "source": conversation.source}
    if conversation.category:
        record["category"] = conversation.category
    return record


def training_examples(conversation: Conversation, template: AnyTemplate | str = DEFAULT_TEMPLATE,
                      system: str | None = None, reasoning: str = DEFAULT_REASONING) -> list[Pieces]:
    """What to train on for a conversation: one example when the template is prefix-stable over
    it, else one example per reply. Each example is (text, supervised) pieces that join into
    exactly the text the template renders.

    Reply k's piece is render(turns[:k+1]) minus render(turns[:k], add_generation_prompt=True),
    on strings: for a chat template it holds what the template writes around the reply (its
    closing `<|im_end|>\\n`, GLM-4's leading newline, Qwen3's think block); for a built-in
    template it is the reply's text (the trainer adds the end token). When every render is a
    prefix of the next, the dialogue is one example supervising every reply. Otherwise (Qwen3 and
    DeepSeek-R1 drop earlier traces, a template that rewrites earlier turns, or --reasoning
    drop-history with traces) each reply is its own example, its prompt rendered as inference
    renders it. A reply of weight 0 is history only; a dialogue with none to train gives [].
    """
    if isinstance(template, str):
        template = get_template(template)
    if conversation.rendered:
        return [[(conversation.turns[0].text, False), (conversation.reply, True)]]
    found = steps(conversation)
    renders = _renders(conversation, template, system or conversation.system, reasoning, found)
    trained = [is_trained(reply) for _, reply in found]
    if not any(trained):
        return []
    if _nested(renders):
        full, pieces, done = renders[-1][1], [], 0
        for (prompt, whole), train in zip(renders, trained):
            pieces += [(full[done:len(prompt)], False), (full[len(prompt):len(whole)], train)]
            done = len(whole)
        last = max(i for i, (_, supervised) in enumerate(pieces) if supervised)
        return [pieces[:last + 1]]
    return [[(prompt, False), (whole[len(prompt):], True)] for (prompt, whole), train in zip(renders, trained) if train]


def segments(conversation: Conversation, template: AnyTemplate | str = DEFAULT_TEMPLATE,
             system: str | None = None, reasoning: str = DEFAULT_REASONING) -> Pieces:
    """The conversation as one example's pieces (see `training_examples`); a ValueError for a
    conversation that the template trains one example per reply."""
    found = training_examples(conversation, template, system, reasoning)
    if len(found) != 1:
        raise ValueError(f"{conversation.id}: the template renders it as {len(found)} examples, not one "
                         "(use training_examples)")
    return found[0]


def _nested(renders: list[tuple[str, str]]) -> bool:
    """Whether every (prompt, whole) render is a prefix of the next and of the last."""
    full, at = renders[-1][1], 0
    for prompt, whole in renders:
        if len(prompt) < at or not (full.startswith(whole) and whole.startswith(prompt)):
            return False
        at = len(whole)
    return True


def _renders(conversation: Conversation, template: AnyTemplate, system: str | None, reasoning: str,
             found: list[Step]) -> list[tuple[str, str]]:
    """(prompt for reply k, prompt + reply k as the template renders it), for every reply k."""
    if isinstance(template, NativeTemplate):
        return _native_renders(conversation, template, system, reasoning, found)
    system = system_text(system, conversation.tools)
    every = kept_traces(found, len(found) - 1, reasoning)
    pairs = _plain_pairs(found, every)
    out = []
    for k in range(len(found)):
        traces = kept_traces(found, k, reasoning)
        upto = pairs[:k + 1] if traces == every[:k + 1] else _plain_pairs(found[:k + 1], traces)
        prompt = render_prompt(template, upto[:-1], upto[-1][0], system)
        out.append((prompt, prompt + upto[-1][1].text))
    return out


def _native_renders(conversation: Conversation, template: NativeTemplate, system: str | None, reasoning: str,
                    found: list[Step]) -> list[tuple[str, str]]:
    import jinja2

    tools = [openai_tool(tool) for tool in conversation.tools] if conversation.tools else None
    if tools and not template.renders_tools:
        raise ValueError("the model's chat template does not write the tool list it is given; train with a "
                         "built-in template (--template chatml, ...), whose tool format docs/tools.md describes")
    if any(reply.tool_calls for _, reply in found) and not template.renders_calls:
        raise ValueError("the model's chat template does not write an assistant's tool_calls; train with a "
                         "built-in template (--template chatml, ...), whose tool format docs/tools.md describes")
    last = kept_traces(found, len(found) - 1, reasoning)
    every = template.dialogue_messages(found, last, system)
    ends = [i for i, message in enumerate(every) if message["role"] == "assistant"]
    out = []
    try:
        for k, end in enumerate(ends):
            traces = kept_traces(found, k, reasoning)
            messages = every[:end + 1] if traces == last[:k + 1] else template.dialogue_messages(found[:k + 1], traces, system)
            prompt = template.render_messages(messages[:-1], True, tools)
            whole = template.render_messages(messages, False, tools)
            if not whole.startswith(prompt):
                raise ValueError(f"the model's chat template does not render reply {k + 1} after its own "
                                 "generation prompt, so what to train on is undefined")
            trace = found[k][1].reasoning
            if traces[k] and trace and trace.strip() not in whole[len(prompt):]:
                # DeepSeek-R1's template cuts the trace even from the reply it renders last: training
                # that would teach the model to answer without the thinking it does at inference.
                raise ValueError(f"the model's chat template drops the reasoning trace of reply {k + 1} itself "
                                 "(DeepSeek-R1's does); train with --reasoning drop, or with a built-in template, "
                                 "which writes <think>…</think> before the reply")
            out.append((prompt, whole))
    except jinja2.TemplateError as exc:
        raise ValueError(f"the model's chat template refused this dialogue: {exc}") from None
    return out


def _input_message(turn: Turn) -> dict:
    if turn.role == "user":
        return {"role": "user", "content": turn.full_text}
    message = {"role": "tool", "content": turn.text}
    if turn.tool_call_id:
        message["tool_call_id"] = turn.tool_call_id
    if turn.name:
        message["name"] = turn.name
    return message


def _call_message(call) -> dict:
    message = {"type": "function", "function": {"name": call.name, "arguments": call.arguments}}
    if call.id:
        message["id"] = call.id
    return message


_NEEDLE = "\ue000idata_probe\ue000"


def _probe_tool() -> dict:
    return {"type": "function", "function": {"name": _NEEDLE, "description": "probe",
                                             "parameters": {"type": "object", "properties": {}}}}


def _shows(template: NativeTemplate, messages: list[dict], tools: list[dict] | None = None) -> bool:
    """Whether the probe text appears when the template renders these messages."""
    try:
        return _NEEDLE in template.render_messages(messages, False, tools)
    except Exception:  # a template that refuses the probe (raise_exception) does not write it
        return False


def parse_prompt(template: AnyTemplate, context: str) -> tuple[list[tuple[Turn, Turn]], Turn] | None:
    """A rendered context read back into (earlier rounds, question), with the template that rendered it.

    Used to re-render a build's held-out rows with another template. The system block is read
    by `parse_system`; None when the context does not have the template's shape.
    """
    layout = prompt_layout(template)
    if not layout.lead or not context.endswith(layout.tail):
        return None
    body = context[:len(context) - len(layout.tail)] if layout.tail else context
    blocks = body.split(layout.lead)[1:]
    if not blocks:
        return None
    history = []
    for block in blocks[:-1]:
        user, found, rest = block.partition(layout.tail)
        if not found:
            return None
        reply = rest[:len(rest) - len(layout.close)] if layout.close and rest.endswith(layout.close) else rest
        history.append((_user_turn(template, user), Turn(role="assistant", text=reply or "…")))
    return history, _user_turn(template, blocks[-1])


def parse_system(template: Template, context: str) -> str | None:
    """The system text a built-in template wrote before the first round of `context`, or None.

    With a system slot it is what fills the slot; without one (seed, chatglm, belle) the system
    text leads the prompt on its own line (`Template.system_block`). Lets a held-out row be
    re-rendered with its system prompt (`parse_prompt` reads the rounds only)."""
    probe = _PROBE[0]
    opening = template.user_block(1, Turn(role="user", text=probe)).split(probe)[0]  # "[Round 1]\n问：", "Instruction: "
    if not opening or opening not in context:
        return None
    head = context.split(opening, 1)[0]
    if not head.startswith(template.prefix):
        return None
    head = head[len(template.prefix):]
    if not head:
        return None
    if template.system:
        before, _, after = template.system.partition("{system}")
        if head.startswith(before) and head.endswith(after) and len(head) > len(before) + len(after):
            return head[len(before):len(head) - len(after)]
        return None
    return head[:-1] if head.endswith("\n") and len(head) > 1 else None


def _user_turn(template: AnyTemplate, text: str) -> Turn:
    """A user turn from its rendered text, its input block split off where the template has one."""
    if isinstance(template, Template) and template.input:
        marker = template.input.split("{input}")[0]
        head, found, rest = text.partition(marker)
        closing = template.input.split("{input}")[1]
        if found:
            return Turn(role="user", text=head.rstrip("\n") or rest, input=rest[:len(rest) - len(closing)] if closing and rest.endswith(closing) else rest)
    return Turn(role="user", text=text or "…")
