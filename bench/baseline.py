"""The baseline a user would otherwise build: a small FastAPI transformer that turns text into the dense
TF-IDF vector and sends it as JSON ``instances`` over REST to the model server (the KServe transformer
and seed pattern). It is given every advantage that is not the design under test: the project's fast
vectorizer (not a per-call scikit-learn transform), orjson, one pooled keep-alive client, one uvicorn
worker like the sidecar, the same ``gc.freeze()`` after start-up. What differs is the payload (the
dense vector) and the REST/JSON path.

``python -m bench.baseline --port P --model-dir <dense base>/<version> --upstream http://127.0.0.1:R
--model-name news``"""

from __future__ import annotations

import argparse
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from textvec import Vectorizer, load_labels


class Text(BaseModel):
    text: str


def create_app(model_dir: Path, upstream: str, model_name: str, freeze_after_startup: bool = True) -> FastAPI:
    vec = Vectorizer.load(model_dir / "assets" / "vectorizer.json")
    labels = load_labels(model_dir)
    url = f"{upstream}/v1/models/{model_name}/versions/{model_dir.name}:predict"
    client = httpx.AsyncClient(
        timeout=5.0, limits=httpx.Limits(max_connections=64, max_keepalive_connections=64)
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # the sidecar's own process optimisation (preprocess_service.main): no full garbage
        # collections over the start-up objects mid-measurement
        if freeze_after_startup:
            gc.collect()
            gc.freeze()
        yield
        await client.aclose()

    app = FastAPI(lifespan=lifespan)

    @app.post("/v1/classify")
    async def classify(body: Text) -> dict[str, Any]:
        ids, weights = vec.transform_one(body.text)
        x = np.zeros(vec.n_features, dtype=np.float32)
        x[ids] = weights
        payload = orjson.dumps({"instances": [x]}, option=orjson.OPT_SERIALIZE_NUMPY)
        resp = await client.post(url, content=payload, headers={"content-type": "application/json"})
        if resp.status_code != 200:
            raise HTTPException(502, resp.text[:200])
        probs = orjson.loads(resp.content)["predictions"][0]
        best = int(np.argmax(probs))
        return {"label": labels[best], "score": float(probs[best])}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.baseline")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--model-dir", type=Path, required=True, help="the dense version directory")
    p.add_argument("--upstream", required=True, help="the model server's REST base URL")
    p.add_argument("--model-name", default="news")
    args = p.parse_args()
    app = create_app(args.model_dir, args.upstream.rstrip("/"), args.model_name)
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
