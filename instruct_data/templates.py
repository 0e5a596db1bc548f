"""Templates: how a Conversation becomes a context (the prompt) and a target (the reply).

A template is data, not code: a few format strings per model family. The same template
renders training data, multi-turn history, and the prompts at evaluation, so training and
inference never disagree.

    context = prefix + system block + every earlier round + the current question
    target  = the last reply

Each round is `user.format(i=..., text=..., input=...)` followed, for earlier rounds, by
`assistant.format(text=...)`. `user` ends where the assistant's reply begins.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cached_property

from instruct_data.schema import Conversation, Turn


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

    def render_messages(self, messages: list[dict], add_generation_prompt: bool) -> str:
        from transformers.utils.chat_template_utils import render_jinja_template

        rendered, _ = render_jinja_template(conversations=[messages], chat_template=self.chat_template,
                                            add_generation_prompt=add_generation_prompt, **dict(self.special_tokens))
        return rendered[0]

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


def rounds(conversation: Conversation) -> list[tuple[Turn, Turn]]:
    """The conversation as (user, assistant) pairs, oldest first."""
    turns = conversation.turns
    return [(turns[i], turns[i + 1]) for i in range(0, len(turns), 2)]


def render(conversation: Conversation, template: AnyTemplate | str = DEFAULT_TEMPLATE,
           system: str | None = None) -> tuple[str, str]:
    """(context, target) for the last reply, with every earlier round as history.

    `system` overrides the conversation's own system text when given.
    """
    if conversation.rendered:
        # A context/target row read back: its context is already a rendered prompt.
        return conversation.turns[0].text, conversation.reply
    if isinstance(template, str):
        template = get_template(template)
    pairs = rounds(conversation)
    *history, (question, answer) = pairs
    context = render_prompt(template, history, question, system or conversation.system)
    return context, answer.text


def training_record(conversation: Conversation, template: AnyTemplate | str = DEFAULT_TEMPLATE,
                    system: str | None = None) -> dict[str, str]:
    """One line of train.jsonl for the conversation's last reply: context, target and bookkeeping."""
    context, target = render(conversation, template, system=system)  # passes a rendered context through
    record = {"context": context, "target": target, "id": conversation.id, "source": conversation.source}
    if conversation.category:
        record["category"] = conversation.category
    return record


def segments(conversation: Conversation, template: AnyTemplate | str = DEFAULT_TEMPLATE,
             system: str | None = None) -> list[tuple[str, bool]]:
    """The whole conversation as (text, supervised) pieces, for training every reply at once.

    Joining the texts of the pieces up to a reply gives exactly the context `render` gives
    for that reply; each supervised piece is a reply's text (the trainer appends EOS).
    """
    if isinstance(template, str):
        template = get_template(template)
    if isinstance(template, NativeTemplate):
        return _native_segments(conversation, template, system or conversation.system)
    pieces: list[tuple[str, bool]] = []
    prompt = template.prefix + template.system_block(system or conversation.system)
    for index, (user, assistant) in enumerate(rounds(conversation), start=1):
        prompt += template.user_block(index, user)
        pieces.append((prompt, False))
        pieces.append((assistant.text, True))
        # What follows a reply inside the history (its closing marker) opens the next prompt.
        prompt = template.assistant_block(assistant.text)[len(assistant.text):] if template.assistant.startswith("{text}") else ""
    return pieces


def _native_segments(conversation: Conversation, template: NativeTemplate, system: str | None) -> list[tuple[str, bool]]:
    """Pieces from a chat template: each prompt is exactly `apply_chat_template(..., add_generation_prompt=True)`.

    A template that rewrites earlier turns (one that drops a reasoning block from the history)
    is not a prefix of itself from one round to the next: then only the last reply is trained.
    """
    pairs = rounds(conversation)
    pieces: list[tuple[str, bool]] = []
    done = ""
    for index, (user, assistant) in enumerate(pairs):
        prompt = render_prompt(template, pairs[:index], user, system)
        if not prompt.startswith(done):
            return [(render_prompt(template, pairs[:-1], pairs[-1][0], system), False), (pairs[-1][1].text, True)]
        pieces += [(prompt[len(done):], False), (assistant.text, True)]
        done = prompt + assistant.text
    return pieces


def parse_prompt(template: AnyTemplate, context: str) -> tuple[list[tuple[Turn, Turn]], Turn] | None:
    """A rendered context read back into (earlier rounds, question), with the template that rendered it.

    Used to re-render a build's held-out rows with another template. The system block is not
    recovered; None when the context does not have the template's shape.
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


def _user_turn(template: AnyTemplate, text: str) -> Turn:
    """A user turn from its rendered text, its input block split off where the template has one."""
    if isinstance(template, Template) and template.input:
        marker = template.input.split("{input}")[0]
        head, found, rest = text.partition(marker)
        closing = template.input.split("{input}")[1]
        if found:
            return Turn(role="user", text=head.rstrip("\n") or rest, input=rest[:len(rest) - len(closing)] if closing and rest.endswith(closing) else rest)
    return Turn(role="user", text=text or "…")
