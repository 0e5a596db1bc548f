"""The decisions made on the keys: which rows are held out, which are duplicates."""

from __future__ import annotations

import os
import pickle
from typing import Any

from instruct_data.formats import Rejected, read_conversations
from instruct_data.io import expand_inputs
from instruct_data.pipeline.keys import Kept
from instruct_data.pipeline.sources import Plan
from instruct_data.split import SplitSettings, choose_heldout


def heldout_rows(kept: Kept, plans: list[Plan], settings: SplitSettings) -> bytearray:
    """The held-out choice (instruct_data.split) over the kept rows' keys."""
    if settings.by == "source":
        groups, names = kept.source, {p.index: f"source:{p.label}" for p in plans}
    else:
        groups, names = kept.stratum, {index: name for name, index in kept.strata.items()}
    return choose_heldout(settings, groups=groups, names=names, ranks=kept.rank, prompt_keys=kept.prompt_key,
                          skip=kept.repeated_id)


def spooled_items(spool: str, kept: Kept, heldout: bytearray, only_heldout: bool = False):
    """The kept rows as dedupe Items, read back from the spool in input order (held-out ones protected)."""
    from instruct_data.dedupe import Item

    order = 0
    for number, used, _ in kept.chunks:
        with open(os.path.join(spool, f"{number}.items"), "rb") as fh:
            items = pickle.load(fh)
        for prompt, reply in items[:used]:
            if not kept.repeated_id[order] and (heldout[order] or not only_heldout):
                # kept.ids[order] is the spooled id; reusing that string object saves a copy per row.
                yield Item(kept.ids[order], prompt, reply, order, bool(heldout[order]))
            order += 1


def benchmark_questions(paths: list[str]) -> list[str]:
    """The questions of benchmark files (any format the readers know): what training must not contain."""
    questions = []
    for path in expand_inputs(paths):
        _, stream = read_conversations(str(path), source="against")
        questions += [result.prompt.full_text for _, result in stream if not isinstance(result, Rejected)]
    return questions


def find_removals(spool: str, kept: Kept, heldout: bytearray, settings, workers: int,
                  against: list[str] = ()) -> dict[int, Any]:
    """Kept row index -> Removal for every kept row dedupe removes.

    Held-out rows are protected (never removed), and their questions join the benchmark
    questions of `against`: a training row that asks a held-out question, whatever its reply,
    is removed as contamination (so the benchmark never scores a question the model was
    trained on), as is a row that duplicates a held-out row under the dedupe key.
    """
    if not (settings.exact or settings.near or against or any(heldout)) or not len(kept):
        return {}
    import numpy as np

    # Rows whose id an earlier row already used are rejected, not compared.
    compared = np.flatnonzero(np.frombuffer(bytes(kept.repeated_id), dtype=np.uint8) == 0)
    if not settings.near:
        found = _exact_removals(kept, compared, heldout, settings, against)
    else:
        questions = list(against)
        if any(heldout):
            questions += list(spooled_items(spool, kept, heldout, only_heldout=True))
        from instruct_data.dedupe import find_duplicate_positions

        # Fingerprints over processes pay off once there are enough rows to cover the start-up.
        dedupe_workers = workers if len(kept) >= 20_000 else 1
        found = find_duplicate_positions(spooled_items(spool, kept, heldout), settings, against=questions,
                                         workers=dedupe_workers)
    return {int(compared[position]): removal for position, removal in found.items()}


def _exact_removals(kept: Kept, compared, heldout: bytearray, settings, against: list[str]) -> dict[int, Any]:
    """find_duplicate_positions without near detection, on the exact keys the workers computed:
    the same rows, order, protection and questions as the spooled Items would give it."""
    import numpy as np

    from instruct_data.dedupe import ExactKeys, decide, exact_batch, exact_key

    keys = ExactKeys.join(kept.dedupe_keys)
    if len(compared) < len(kept):
        keys = keys.take(compared)
    kept.dedupe_keys.clear()
    protected = np.frombuffer(bytes(heldout), dtype=np.uint8)[compared].astype(bool)
    ids = kept.ids if len(compared) == len(kept) else [kept.ids[i] for i in compared.tolist()]
    held = np.flatnonzero(protected).tolist()
    # The questions as find_duplicates numbers them: `against:N` texts, then the held-out rows.
    questions = [(f"against:{n}", text) for n, text in enumerate(against, start=1)]
    questions += [(ids[i], "") for i in held]
    question_keys = [exact_key(text, settings) for text in against] + [keys.prompt[i].tobytes() for i in held]
    batch = exact_batch(keys, ids, compared, protected, question_keys, settings)
    return decide([batch], settings, questions)
