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


def render_prompt(template: Template, history: list[tuple[Turn, Turn]], question: Turn,
                  system: str | None = None) -> str:
    """The context for answering `question` after the given earlier rounds."""
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


def render(conversation: Conversation, template: Template | str = DEFAULT_TEMPLATE,
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


def segments(conversation: Conversation, template: Template | str = DEFAULT_TEMPLATE,
             system: str | None = None) -> list[tuple[str, bool]]:
    """The whole conversation as (text, supervised) pieces, for training every reply at once.

    Joining the texts of the pieces up to a reply gives exactly the context `render` gives
    for that reply; each supervised piece is a reply's text (the trainer appends EOS).
    """
    if isinstance(template, str):
        template = get_template(template)
    pieces: list[tuple[str, bool]] = []
    prompt = template.prefix + template.system_block(system or conversation.system)
    for index, (user, assistant) in enumerate(rounds(conversation), start=1):
        prompt += template.user_block(index, user)
        pieces.append((prompt, False))
        pieces.append((assistant.text, True))
        # What follows a reply inside the history (its closing marker) opens the next prompt.
        prompt = template.assistant_block(assistant.text)[len(assistant.text):] if template.assistant.startswith("{text}") else ""
    return pieces
