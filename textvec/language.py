"""Choose an analyzer for a corpus: word n-grams for space-separated scripts, character n-grams for
scripts written without spaces (Chinese, Japanese), where a word tokenizer would see whole sentences
as single tokens."""

from __future__ import annotations

from collections.abc import Iterable

# Han, Hiragana, Katakana, CJK punctuation/compatibility, Thai, Lao, Khmer, Myanmar: no spaces between words.
_UNSPACED_RANGES = (
    (0x3040, 0x30FF),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0x20000, 0x2FA1F),
    (0x0E00, 0x0EFF),
    (0x1000, 0x109F),
    (0x1780, 0x17FF),
)


def _unspaced(ch: str) -> bool:
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in _UNSPACED_RANGES)


def unspaced_share(texts: Iterable[str], sample_chars: int = 200_000) -> float:
    """Share of letters that belong to scripts written without spaces, over a bounded sample."""
    letters = unspaced = 0
    for text in texts:
        for ch in text:
            if ch.isalpha():
                letters += 1
                unspaced += _unspaced(ch)
        if letters >= sample_chars:
            break
    return unspaced / letters if letters else 0.0


def detect_analyzer(texts: Iterable[str], threshold: float = 0.3) -> str:
    """'char' when at least ``threshold`` of the letters are from unspaced scripts, else 'word'."""
    return "char" if unspaced_share(texts) >= threshold else "word"
