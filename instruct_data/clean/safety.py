"""Safety answers: a reply that declines or warns against something harmful, hateful, illegal or
private. The quality guide keeps them (a correct refusal of an unsafe request is wanted
behaviour), so `ai_identity` and `refusal` leave them alone.

    judges_harm("I'm sorry, I cannot help with that. It is illegal.", 0)   # True
    judges_harm("抱歉，我无法为您提供犯罪率上升的原因。", 0)                  # False: a topic, no judgement
"""

from __future__ import annotations

import re

# A judgement that something is harmful (非法, 有害, 不恰当, offensive, privacy), not a topic: "犯罪率",
# "毒品" or "暴力" can be what a harmless question is about. A disclaimer of what the assistant
# cannot do (实时数据, 个人观点, 医疗建议) names no harm.
HARM = re.compile(r"非法|违法|不道德|有害|伤害|危害|危险|恶意|侵犯|侮辱|贬低|冒犯|隐私|不当|不适当|不恰当|不合适|不可接受|不被接受"
                  r"|仇恨言论"
                  r"|\b(?:illegal|unethical|not ethical|harm(?!less)\w*|injur\w*|offensive|inappropriate|not appropriate"
                  r"|derogatory|dangerous|hateful|hate speech|privacy|disrespectful|unacceptable|morally wrong"
                  r"|against (?:my |the |our )?(?:programming|ethical|ethics|moral|legal)\w*"
                  r"|violat\w* (?:\w+ ){0,2}(?:laws?|privacy|rights|terms))\b", re.IGNORECASE)
# Sentences: Chinese ends, and an English full stop before a space.
CLAUSE_END = re.compile(r"[^。！？!?\n]*?(?:[。！？!?]+|\.\s+|\n|$)")
WINDOW = (2, 2)  # sentences before and after the one judged


def judges_harm(text: str, position: int, window: tuple[int, int] = WINDOW) -> bool:
    """The sentence holding `position`, or one within `window` sentences of it, judges something
    harmful (the refusal and its reason may stand apart: "…我不能帮你找到他们。这种行为是违法的")."""
    if not HARM.search(text):
        return False  # the usual case, decided by one search
    sentences = [(m.start(), m.end()) for m in CLAUSE_END.finditer(text) if m.end() > m.start()]
    if not sentences:
        return False
    here = next((i for i, (start, end) in enumerate(sentences) if start <= position < end), 0)
    before, after = window
    span = text[sentences[max(0, here - before)][0]:sentences[min(len(sentences) - 1, here + after)][1]]
    return HARM.search(span) is not None
