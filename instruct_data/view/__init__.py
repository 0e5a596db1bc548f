"""`idata view`: one static HTML page of a build's or an evaluation's decisions, to look at.

    build folder  the ledger per source, every reject by reason (paged, searchable), duplicate
                  pairs side by side with their differences marked, contamination hits next to
                  the held-out item they matched, the length histograms
    eval folder   per item: prompt, base answer, tuned answer, reference and their scores;
                  filter by category and by better / worse / same

The page needs no server and no network: data, style and script are inside the one file,
written beside report.md as view.html.
"""

from instruct_data.view.page import write_view

__all__ = ["write_view"]
