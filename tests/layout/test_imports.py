"""Who may import whom, read from the source (nothing is imported or run): product code and the harness
import nothing from the tests, the base packages need only numpy and orjson (and jieba, for textvec's Chinese
word segmentation), and the sidecar carries no
training code (its image does not have it)."""

from __future__ import annotations

import ast
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ["contracts", "textvec", "training", "preprocess_service", "local_model_server", "scoring"]
HARNESS = ["devstack", "bench", "scripts/run_local.py"]
# modules that live only under tests/ (imported there by their bare names)
TEST_MODULES = {"tests", "conftest"} | {p.stem for p in (ROOT / "tests").rglob("*.py")}
BASE_DEPENDENCIES = {"numpy", "orjson", "contracts", "textvec"}


def _files(where: str) -> list[Path]:
    path = ROOT / where
    return [path] if path.is_file() else sorted(path.rglob("*.py"))


def imported_modules(path: Path) -> set[str]:
    """Top-level names of every module ``path`` imports, at module level or inside functions."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _offenders(places: list[str], allowed: Callable[[str], bool]) -> dict[str, list[str]]:
    found = {}
    for where in places:
        for f in _files(where):
            bad = sorted(m for m in imported_modules(f) if not allowed(m))
            if bad:
                found[str(f.relative_to(ROOT))] = bad
    return found


def test_the_checker_sees_an_import_of_test_code(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("import os\n\ndef g():\n    from tests.reference import pad\n    import rel_support\n")
    assert imported_modules(f) == {"os", "tests", "rel_support"}
    assert {"rel_support", "lms_support", "doubles", "reference"} <= TEST_MODULES


@pytest.mark.parametrize("where", PRODUCT + HARNESS)
def test_product_and_harness_import_nothing_from_tests(where: str) -> None:
    assert _offenders([where], lambda m: m not in TEST_MODULES) == {}


@pytest.mark.parametrize("where", ["contracts", "textvec"])
def test_base_packages_need_only_numpy_and_orjson(where: str) -> None:
    # tensorflow_serving: only inside the functions that convert a state's name to the proto's number;
    # jieba: textvec/segment.py only, the "char+words" analyzer (a core dependency, so the sidecar has it)
    extra = {"tensorflow_serving"} | ({"jieba"} if where == "textvec" else set())
    allowed = BASE_DEPENDENCIES | set(sys.stdlib_module_names) | extra
    assert _offenders([where], lambda m: m in allowed) == {}


def test_sidecar_imports_no_training_code_nor_keras() -> None:
    assert _offenders(["preprocess_service"], lambda m: m not in {"training", "keras", "sklearn"}) == {}
