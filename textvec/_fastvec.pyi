# Types of the compiled analyzer (textvec/_fastvec.c).
from collections.abc import Sequence

class Table:
    def __init__(
        self,
        vocabulary: Sequence[str],
        idf: Sequence[float],
        ngram_lo: int,
        ngram_hi: int,
        sublinear_tf: bool,
    ) -> None: ...
    def transform(self, lowercased_text: str) -> tuple[list[int], list[float]]: ...
    def tokens(self, text: str) -> list[str]: ...
