"""Rules stay linear in the text: a reply of many blank lines, words or spaces is cleaned in
about the time it takes to read, not in the square of its length.

`structure.prose_lines` (read by chinese_share, repetition, truncated and others) searched the
whole text with `^\\s*keyword` line by line: from every line start `\\s*` ran over all the blank
lines below it. Lines that hold only an ideographic space (U+3000) survive tidy_whitespace, so a
row of 50,000 of them held a build for about four minutes (20,000: 44 s); a code block keeps
blank lines too. The timeout below is a hang detector with a wide margin, not a speed target.
"""

import json

from entrypoint import idata


def test_a_reply_of_fifty_thousand_blank_lines_does_not_hold_the_build(tmp_path):
    rows = [{"instruction": "问题", "output": "\u3000\n" * 50000 + "答。"},
            {"instruction": "写一段说明", "output": "说明如下：" + "\n\u3000" * 50000 + "\n结束。"},
            # English words with no function word (chinese_share's test for an English sentence read
            # the run from every word: n²), and a long run of spaces (tidy_whitespace's trailing-space
            # pattern and the table-line test split it every way: n²).
            {"instruction": "介绍一下长江", "output": "Human: " * 30000},
            {"instruction": "写一段说明", "output": "说明" + " " * 60000 + "完。"},
            {"instruction": "写一段说明", "output": "说明：\n" + "a=" * 100000 + "中文"},  # the code-line test
            {"instruction": "长江有多长？", "output": "约 6300 公里。"}]
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    recipe = tmp_path / "r.yaml"  # long texts allowed, so that every rule reads them
    recipe.write_text(f"sources:\n  - files: [{path}]\nmax_reject_rate: 1\n"
                      "clean:\n  length: {max_instruction: 1000000, max_reply: 1000000}\n", encoding="utf-8")
    result = idata("build", recipe, "--workers", "1", "--out", tmp_path / "out", timeout=90)
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["counts"]["totals"]["read"] == 6
