"""The evaluation gate and the declared rollout: ``python -m training canary|promote|rollback``.

Each command edits the declared versions (contracts/rollout.py): the model config's ``stable`` and
``canary`` labels and the rollout file, in a directory (``--config-dir``, what ``make run`` and the
tests use) or in the chart's ConfigMap (``--configmap``, through kubectl, or in a pod without kubectl through
the API server with the pod's service account: the training Job). TF Serving and the sidecar
re-read them; nothing restarts.

``promote`` refuses a version whose files fail the contract checks (never overridable: it could not
serve), or whose evaluation (metrics.json) is worse than the current stable's by more than
``--tolerance`` (``--force --reason`` overrides, and the reason is logged and written into the config)."""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contracts import modeldir
from contracts.rollout import MODEL_CONFIG, ROLLOUT, Rollout, RolloutError, declared, with_roles
from textvec import Vectorizer, VectorizerError
from textvec.calibration import CalibrationError, load_calibration
from training.kubeapi import KubeApi, KubeApiError

log = logging.getLogger("training.promote")
METRICS = ("accuracy", "macro_f1")
COMMANDS = ("canary", "promote", "rollback")


class GateError(Exception):
    """The change is refused; the message says why."""


# --- checks ---------------------------------------------------------------------------------------


def contract_problems(version_dir: Path) -> list[str]:
    """What in a version's files breaks the model directory contract (empty: nothing)."""
    if not version_dir.is_dir():
        return [f"{version_dir} does not exist"]
    problems = []
    if not (version_dir / modeldir.SAVED_MODEL).is_file():
        problems.append(f"no {modeldir.SAVED_MODEL}")
    fingerprint = None
    try:
        fingerprint = Vectorizer.load(version_dir / modeldir.VECTORIZER).fingerprint
    except (VectorizerError, OSError) as exc:
        problems.append(f"vectorizer: {exc}")
    try:
        labels = modeldir.load_labels(version_dir)
        if len(set(labels)) != len(labels) or not labels:
            problems.append("labels.json: labels must be unique and non-empty")
    except (modeldir.ModelDirError, OSError, ValueError) as exc:
        problems.append(f"labels: {exc}")
        labels = []
    doc = report(version_dir)
    if doc is None:
        problems.append(f"no readable {modeldir.METRICS}: a version without an evaluation cannot be judged")
    else:
        if fingerprint and doc.get("vectorizer_fingerprint") not in (None, fingerprint):
            problems.append("metrics.json was computed with another vectorizer")
        per_class = (doc.get("test") or {}).get("per_class") or {}
        if labels and per_class and set(per_class) != set(labels):
            problems.append("metrics.json's classes differ from labels.json")
    try:
        load_calibration(version_dir, fingerprint)
    except (CalibrationError, OSError, ValueError) as exc:
        problems.append(f"calibration: {exc}")
    return problems


def report(version_dir: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads((version_dir / modeldir.METRICS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def scores(version_dir: Path) -> dict[str, float | None]:
    test = ((report(version_dir) or {}).get("test")) or {}
    return {m: test.get(m) if isinstance(test.get(m), int | float) else None for m in METRICS}


def regressions(
    cand: dict[str, float | None], stable: dict[str, float | None], tolerance: float
) -> list[str]:
    out = []
    for m in METRICS:
        c, s = cand[m], stable[m]
        if s is None:
            continue
        if c is None:
            out.append(f"{m}: missing (stable has {s:.4f})")
        elif c < s - tolerance:
            out.append(f"{m}: {c:.4f} < stable's {s:.4f} - tolerance {tolerance:g}")
    return out


def side_by_side(rows: Sequence[tuple[str, Path | None]]) -> str:
    """The versions' test-split metrics in columns, per class F1 included."""
    cols = [(title, report(p) if p else None) for title, p in rows]
    names = list(METRICS)
    classes: list[str] = []
    for _, doc in cols:
        for c in ((doc or {}).get("test") or {}).get("per_class") or {}:
            if c not in classes:
                classes.append(c)

    def cell(doc: dict[str, Any] | None, key: str) -> str:
        test = (doc or {}).get("test") or {}
        v = test.get(key) if key in names else ((test.get("per_class") or {}).get(key) or {}).get("f1")
        return f"{v:.4f}" if isinstance(v, int | float) else "-"

    lines = [f"{'metric':<24}" + "".join(f"{t:>18}" for t, _ in cols)]
    for key in names + classes:
        label = key if key in names else f"f1[{key}]"
        lines.append(f"{label[:24]:<24}" + "".join(f"{cell(d, key):>18}" for _, d in cols))
    return "\n".join(lines)


# --- where the declaration lives ------------------------------------------------------------------


@dataclass
class Store:
    """The two files, in a directory or in a ConfigMap (read and patched with kubectl)."""

    config_dir: Path | None
    configmap: str | None
    namespace: str | None

    def _api(self) -> KubeApi | None:
        """In a pod without kubectl (the trainer image): the API server, with the pod's token."""
        if shutil.which("kubectl") is None and KubeApi.in_pod():
            return KubeApi.from_pod(self.namespace)
        return None

    def _kubectl(self, *args: str, stdin: str | None = None) -> str:
        cmd = ["kubectl", *(["-n", self.namespace] if self.namespace else []), *args]
        res = subprocess.run(cmd, input=stdin, capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise GateError(f"{' '.join(cmd)} failed: {res.stderr.strip()}")
        return res.stdout

    def read(self) -> tuple[str, Rollout]:
        if self.config_dir is not None:
            text = (self.config_dir / MODEL_CONFIG).read_text(encoding="utf-8")
            rpath = self.config_dir / ROLLOUT
            return text, Rollout.from_json(rpath.read_bytes()) if rpath.exists() else Rollout()
        api = self._api()
        doc = (
            api.get_configmap(str(self.configmap))
            if api
            else json.loads(self._kubectl("get", "configmap", str(self.configmap), "-o", "json"))
        )
        data = doc.get("data") or {}
        if MODEL_CONFIG not in data:
            raise GateError(f"ConfigMap {self.configmap} has no {MODEL_CONFIG}")
        return data[MODEL_CONFIG], Rollout.from_json(data.get(ROLLOUT, ""))

    def write(self, text: str, rollout: Rollout) -> None:
        if self.config_dir is not None:
            # rollout first: a sidecar that sees the new labels also sees the new share
            for name, blob in ((ROLLOUT, rollout.to_json()), (MODEL_CONFIG, text.encode())):
                tmp = self.config_dir / f".{name}.tmp"
                tmp.write_bytes(blob)
                tmp.replace(self.config_dir / name)
            return
        patch = {"data": {MODEL_CONFIG: text, ROLLOUT: rollout.to_json().decode()}}
        api = self._api()
        if api is not None:
            api.patch_configmap(str(self.configmap), patch)
            return
        self._kubectl("patch", "configmap", str(self.configmap), "--type", "merge", "-p", json.dumps(patch))


# --- commands -------------------------------------------------------------------------------------


def _stamp(what: str) -> str:
    return f"# last change: {what} ({time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())})\n"


def _checked(base: Path, version: int) -> Path:
    vdir = base / str(version)
    problems = contract_problems(vdir)
    if problems:
        raise GateError(f"version {version} fails the contract checks: " + "; ".join(problems))
    return vdir


def _gate(args: argparse.Namespace, version: int, vdir: Path, stable: int | None, base: Path) -> str:
    """Refuse a candidate that evaluates worse than stable beyond the tolerance (``--force --reason``
    overrides): returns what a forced change notes, empty when nothing was worse."""
    worse = regressions(scores(vdir), scores(base / str(stable)), args.tolerance) if stable else []
    if worse and not args.force:
        raise GateError(
            f"version {version} is worse than stable {stable}: " + "; ".join(worse)
            + " (--force --reason '...' overrides)"
        )  # fmt: skip
    if not worse:
        return ""
    note = f"; forced over [{'; '.join(worse)}]: {args.reason}"
    log.warning("forced past the evaluation gate: version %s%s", version, note)
    return note


def run(args: argparse.Namespace, out: Any = sys.stdout) -> None:
    """One declared change. TF Serving moves an existing label only onto a version it has loaded, so
    every change here is one it accepts in a single step: a canary is added where none is, promotion
    moves `stable` onto the (loaded) canary and keeps the old stable loaded as `previous`, and a
    rollback moves `stable` back onto `previous`."""
    store = Store(args.config_dir, args.configmap, args.namespace)
    base: Path = args.model_base / args.model_name
    text, rollout = store.read()
    decl = declared(text, args.model_name)
    if decl is None:
        raise GateError(f"model {args.model_name!r} is not in the model config")
    stable, canary, previous = decl.stable, decl.canary, decl.previous
    served = decl.versions if decl.policy == "specific" else frozenset()

    def write(roles: tuple[int, int | None, int | None], note: str, ro: Rollout = rollout) -> None:
        store.write(_stamp(note) + with_roles(text, args.model_name, *roles), ro)
        log.info("%s", note)
        print(note, file=out)

    if args.command == "rollback":
        roles: tuple[int, int | None, int | None]
        if args.to_version is not None:
            if args.to_version not in served:
                raise GateError(
                    f"version {args.to_version} is not loaded (served: {sorted(served)}); TF Serving refuses "
                    "to move the stable label onto it: declare it as canary first, then promote it"
                )
            roles, note = (args.to_version, None, None), f"rollback to {args.to_version} (was {stable})"
        elif canary is not None and stable is not None:
            roles, note = (stable, None, previous), f"canary {canary} removed; stable stays {stable}"
        elif previous is not None and stable is not None:
            roles, note = (previous, None, None), f"rollback to {previous} (was {stable})"
        else:
            raise GateError("nothing to roll back: no canary and no previous version is declared")
        _checked(base, roles[0])
        print(side_by_side([(f"stable v{roles[0]}", base / str(roles[0]))]), file=out)
        write(roles, note)
        return
    if args.version == stable:
        raise GateError(f"version {args.version} is the stable version already")
    vdir = _checked(base, args.version)
    cols: list[tuple[str, Path | None]] = [(f"candidate v{args.version}", vdir)]
    if stable is not None:
        cols.insert(0, (f"stable v{stable}", base / str(stable)))
    print(side_by_side(cols), file=out)
    if args.command == "canary":
        forced = _gate(args, args.version, vdir, stable, base) if args.gate else ""
        if stable is None:
            raise GateError("declare a stable version first: promote --version <the one serving now>")
        if canary is not None and canary != args.version:
            raise GateError(
                f"canary {canary} is declared: remove it first (rollback), and once TF Serving has re-read "
                f"its config (model.configPollSeconds) declare {args.version}"
            )
        note = f"canary {args.version} ({args.mode}, {args.weight:g}%) beside stable {stable}{forced}"
        write((stable, args.version, None), note, Rollout(args.mode, args.weight, rollout.fallback))
        return
    if stable is not None and args.version not in served and args.via_canary is not None:
        # Gate first (nothing is declared for a refused version), then let TF Serving load it as a
        # canary without traffic, then move `stable` onto it (TF Serving's rule above).
        _gate(args, args.version, vdir, stable, base)
        if canary is not None:
            raise GateError(f"canary {canary} is declared: roll it back before promoting {args.version}")
        write((stable, args.version, None), f"canary {args.version} (split, 0%) to load it before promotion",
              Rollout("split", 0.0, rollout.fallback))  # fmt: skip
        print(f"waiting {args.via_canary:g} s for the model server to load version {args.version}", file=out)
        time.sleep(args.via_canary)
        again = argparse.Namespace(**{**vars(args), "via_canary": None})
        run(again, out)
        return
    if stable is not None and args.version not in served:
        raise GateError(
            f"version {args.version} is not loaded (served: {sorted(served)}): declare it as canary first "
            "(TF Serving moves the stable label only onto a loaded version)"
        )
    forced = _gate(args, args.version, vdir, stable, base)
    note = f"promote {args.version} (was {stable}, kept loaded as previous){forced}"
    if forced:
        log.warning("promotion forced: %s", note)
    write((args.version, None, stable), note)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training", description="Declare which model versions serve.")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--model-name", required=True)
        sp.add_argument("--model-base", type=Path, default=Path("/models"), help="holds <name>/<version>/")
        where = sp.add_mutually_exclusive_group(required=True)
        where.add_argument("--config-dir", type=Path, help=f"directory with {MODEL_CONFIG} and {ROLLOUT}")
        where.add_argument("--configmap", help="the chart's <release>-tfserving ConfigMap (uses kubectl)")
        sp.add_argument("--namespace", help="namespace of --configmap")

    def candidate(sp: argparse.ArgumentParser) -> None:
        which = sp.add_mutually_exclusive_group(required=True)
        which.add_argument("--version", type=int)
        which.add_argument(
            "--version-file", type=Path, help="a file holding the version (train --version-file writes it)"
        )
        sp.add_argument(
            "--tolerance", type=float, default=0.01, help="allowed drop per metric (default: 0.01)"
        )
        sp.add_argument("--force", action="store_true", help="go ahead although the evaluation is worse")
        sp.add_argument("--reason", help="why --force (required with it; logged and kept in the config)")

    c = sub.add_parser("canary", help="serve a version beside stable for a share of traffic (or shadowed)")
    common(c)
    candidate(c)
    c.add_argument("--weight", type=float, default=10.0, help="percent of requests (default: 10)")
    c.add_argument("--mode", choices=["split", "shadow"], default="split")
    c.add_argument(
        "--gate", action="store_true", help="refuse a canary evaluating worse than stable (as promote does)"
    )
    pr = sub.add_parser("promote", help="mark a version stable if its evaluation is not worse")
    common(pr)
    candidate(pr)
    pr.add_argument(
        "--via-canary",
        type=float,
        metavar="SECONDS",
        help="for a version not declared yet: after the gate, declare it as a canary without traffic, wait "
        "SECONDS for the model server to load it, then promote (what the training Job does)",
    )
    rb = sub.add_parser("rollback", help="remove the canary, or make --to-version stable again")
    common(rb)
    rb.add_argument("--to-version", type=int)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    if getattr(args, "version_file", None) is not None:
        try:
            args.version = int(args.version_file.read_text(encoding="utf-8").strip())
        except (OSError, ValueError) as exc:
            print(f"error: --version-file {args.version_file}: {exc}", file=sys.stderr)
            return 2
    if getattr(args, "force", False) and not args.reason:
        print("error: --force needs --reason", file=sys.stderr)
        return 2
    if getattr(args, "weight", 0) is not None and not 0 <= getattr(args, "weight", 0) <= 100:
        print("error: --weight is a percentage in [0, 100]", file=sys.stderr)
        return 2
    try:
        run(args)
    except (GateError, RolloutError, KubeApiError, OSError) as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    return 0
