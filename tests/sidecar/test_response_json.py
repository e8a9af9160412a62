"""``/v1/classify``'s body written by orjson is byte for byte the validated response models' JSON."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from preprocess_service.explain import TermContribution as Term
from preprocess_service.postprocess import Answer
from preprocess_service.response_json import classify_response
from preprocess_service.schemas import (
    ClassifyResponse,
    Explanation,
    LabelScore,
    ModelRef,
    Prediction,
    TermContribution,
)

# probabilities are in [0, 1], but the encoder must agree on any float: tiny, huge, -0.0, NaN, infinities
floats = st.one_of(
    st.floats(0, 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e-7, 1.2e-08, 5e-324, 1e16, 1e21, -0.0, math.nan, math.inf, -math.inf]),
)
text = st.text(st.characters(codec="utf-8"), max_size=12)  # control characters, quotes, emoji, U+2028
labels = st.lists(text, min_size=1, max_size=4, unique=True)


@st.composite
def answers(draw: st.DrawFn) -> Answer:
    names = draw(labels)
    abstained = draw(st.booleans())
    return Answer(
        label=draw(st.none() | text) if abstained else names[0],
        score=draw(floats),
        abstained=abstained,
        top_label=names[0],
        probabilities=draw(st.none() | st.fixed_dictionaries({n: floats for n in names})),
        top_k=draw(st.none() | st.lists(st.tuples(st.sampled_from(names), floats), min_size=1, max_size=3)),
        explanation=draw(st.none() | st.lists(st.builds(Term, text, floats, floats), max_size=3)),
    )


def validated(name: str, version: int, items: list[Answer]) -> bytes:
    """The reference: the response models, validated, written by pydantic."""
    predictions = [
        Prediction(
            label=a.label,
            score=a.score,
            abstained=a.abstained,
            probabilities=a.probabilities,
            top_k=None if a.top_k is None else [LabelScore(label=lbl, score=s) for lbl, s in a.top_k],
            explanation=None
            if a.explanation is None
            else Explanation(
                label=a.top_label,
                method="occlusion",
                terms=[
                    TermContribution(term=t.term, contribution=t.contribution, weight=t.weight)
                    for t in a.explanation
                ],
            ),
        )
        for a in items
    ]
    return (
        ClassifyResponse(model=ModelRef(name=name, version=version), predictions=predictions)
        .model_dump_json()
        .encode()
    )


@settings(max_examples=400, deadline=None)
@given(name=text, version=st.integers(0, 2**62), items=st.lists(answers(), max_size=4))
def test_the_same_bytes_as_the_validated_models(name: str, version: int, items: list[Answer]) -> None:
    assert classify_response(name, version, items) == validated(name, version, items)


def test_a_plain_answer() -> None:
    a = Answer(label="sport", score=0.9731234, abstained=False, top_label="sport")
    body = classify_response("news", 3, [a])
    assert body == (
        b'{"model":{"name":"news","version":3},"predictions":[{"label":"sport","score":0.9731234,'
        b'"abstained":false,"probabilities":null,"top_k":null,"explanation":null}]}'
    )
    assert body == validated("news", 3, [a])
