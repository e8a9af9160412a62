"""Corpus hygiene before any split: a duplicate on both sides of a train/test split inflates test
accuracy, and a text carrying two labels teaches the model noise."""

from __future__ import annotations

from collections import defaultdict

from training.datasets import Dataset


def deduplicate(ds: Dataset) -> Dataset:
    """Keep the first copy of each exact text (compared after stripping surrounding whitespace);
    drop every copy of a text that appears with more than one label. Counts go into ``stats``."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, text in enumerate(ds.texts):
        groups[text.strip()].append(i)
    keep: list[int] = []
    duplicates = conflicting_texts = conflicting_rows = 0
    for idxs in groups.values():
        if len({ds.labels[i] for i in idxs}) > 1:
            conflicting_texts += 1
            conflicting_rows += len(idxs)
            continue
        keep.append(idxs[0])
        duplicates += len(idxs) - 1
    keep.sort()
    stats = dict(ds.stats)
    stats.update(
        rows_loaded=len(ds),
        duplicates_removed=duplicates,
        conflicting_label_texts=conflicting_texts,
        conflicting_label_rows_removed=conflicting_rows,
        rows_kept=len(keep),
    )
    return Dataset(
        ds.name,
        [ds.texts[i] for i in keep],
        [ds.labels[i] for i in keep],
        [ds.origins[i] for i in keep],
        stats,
    )
