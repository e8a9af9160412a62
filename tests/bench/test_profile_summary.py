"""bench.profile's summary of py-spy's collapsed stacks: own samples by module, inclusive samples of the
project's functions (the sidecar's and, with --process model-server, the stand-in's)."""

from __future__ import annotations

from bench.profile import summarize

STACKS = "\n".join(
    [
        "main (x/__main__.py:1);_predict (x/local_model_server/rest.py:140);to_array "
        "(x/local_model_server/tensors.py:79) 3",
        "main (x/__main__.py:1);_predict (x/local_model_server/rest.py:140);call "
        "(x/site-packages/tensorflow/python/eager/function.py:9) 5",
        "main (x/__main__.py:1);transform_one (x/textvec/vectorizer.py:181) 2",
        "main (x/__main__.py:1);run (x/asyncio/runners.py:118) 1",
        "garbage line without a count",
    ]
)


def test_own_samples_by_module_and_inclusive_project_functions() -> None:
    s = summarize(STACKS)
    assert s["samples"] == 11
    assert s["own_share_by_module"] == {
        "tensorflow": round(5 / 11, 3),
        "local_model_server": round(3 / 11, 3),
        "textvec": round(2 / 11, 3),
        "asyncio/uvloop": round(1 / 11, 3),
    }
    incl = s["inclusive_share_top"]
    assert incl["rest.py:_predict"] == round(8 / 11, 3)
    assert incl["tensors.py:to_array"] == round(3 / 11, 3)
    assert incl["vectorizer.py:transform_one"] == round(2 / 11, 3)
    assert not any(k.startswith("runners.py") for k in incl)


def test_empty_profile() -> None:
    assert summarize("") == {"samples": 0, "own_share_by_module": {}, "inclusive_share_top": {}}
