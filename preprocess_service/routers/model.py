"""``GET /v1/model``: what is being served, and how well it did on its test split."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from preprocess_service.deps import ModelDep, require_api_key
from preprocess_service.lifecycle.deps import LifecycleDep
from preprocess_service.lifecycle.report import rollout_info
from preprocess_service.schemas import ERRORS, CalibrationInfo, ModelInfo

router = APIRouter(tags=["model"], dependencies=[Depends(require_api_key)], responses=ERRORS)


@router.get("/v1/model", response_model=ModelInfo, summary="The pinned model version")
async def model_info(model: ModelDep, lifecycle: LifecycleDep) -> ModelInfo:
    vec = model.vectorizer
    return ModelInfo(
        name=model.name,
        version=model.version,
        labels=list(model.labels),
        vectorizer_fingerprint=vec.fingerprint,
        analyzer=vec.analyzer,
        ngram_range=vec.ngram_range,
        n_features=vec.n_features,
        metrics=model.metrics,
        calibration=CalibrationInfo(
            temperature=model.calibration.temperature,
            abstain_threshold=model.calibration.abstain_threshold,
            target_precision=model.calibration.target_precision,
        ),
        rollout=rollout_info(lifecycle),
    )
