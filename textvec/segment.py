"""Word segmentation for scripts written without spaces (Chinese), with ``jieba``.

Imported lazily: only vectorizers fitted with word segmentation need it, and its dictionary takes
about a second to load, so the first use (a vectorizer's load, not a request) pays for it once per
process. The segmenter's name and version are part of the vectorizer's content: a different jieba
could cut words differently, and the sidecar must compute exactly the features training saw."""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from importlib import metadata
from pathlib import Path
from typing import Any

NAME = "jieba"
_lock = threading.Lock()
_tokenizer: Any = None


class SegmenterError(RuntimeError):
    """The segmenter a vectorizer needs is missing, or is not the version it was fitted with."""


def version() -> str:
    """``jieba <version>`` as installed, the string stored in vectorizer.json."""
    try:
        return f"{NAME} {metadata.version(NAME)}"
    except metadata.PackageNotFoundError as exc:
        raise SegmenterError(f"word segmentation needs the package {NAME!r}, which is not installed") from exc


def _get() -> Any:
    global _tokenizer
    if _tokenizer is None:
        with _lock:
            if _tokenizer is None:
                import jieba

                jieba.setLogLevel(logging.WARNING)  # its dictionary-loading chatter is not an event
                tok = jieba.Tokenizer()
                tok.tmp_dir = _private_cache_dir()
                tok.initialize()
                _tokenizer = tok
    return _tokenizer


def _private_cache_dir() -> str:
    """Where jieba caches its parsed dictionary. Its default, a fixed name in the shared temporary
    folder, would let another user's file decide how words are cut (and so the features); a folder
    only this user can write keeps the cache (it saves about a second per process) without that."""
    path = Path(tempfile.gettempdir()) / f"textvec-jieba-{os.getuid()}"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        st = path.stat()
        if st.st_uid == os.getuid() and not st.st_mode & 0o022:
            return str(path)
    except OSError:
        pass
    return tempfile.mkdtemp(prefix="textvec-jieba-")


def warm_up() -> None:
    """Load the dictionary now rather than on the first text."""
    _get()


def words(text: str) -> list[str]:
    """The words of ``text`` (jieba's default mode, with its HMM for unknown words); whitespace and
    tokens without a letter or digit (punctuation, emoji) are left out."""
    return [w for w in _get().lcut(text, HMM=True) if any(ch.isalnum() for ch in w)]
