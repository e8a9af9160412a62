"""Request and response models: the OpenAPI document at /docs is generated from these."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from preprocess_service.lifecycle.schemas import RolloutInfo

_EXAMPLE = "The striker scored twice as the home side won the cup final."


class ClassifyRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"text": _EXAMPLE},
                {
                    "texts": [_EXAMPLE, "Shares fell after the bank cut its forecast."],
                    "return_probabilities": True,
                },
                {"text": _EXAMPLE, "top_k": 3, "min_confidence": 0.8, "explain": True},
            ]
        },
    )
    text: str | None = Field(None, description="one text; give either `text` or `texts`")
    texts: list[str] | None = Field(None, description="a batch of texts", min_length=1)
    return_probabilities: bool = Field(False, description="include every class probability per text")
    top_k: int | None = Field(
        None,
        ge=1,
        description="also return the k most probable labels with their calibrated scores, highest first "
        "(always exactly k entries); at most the number of labels",
        examples=[3],
    )
    min_confidence: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="abstain (no label, `abstained: true`) when the calibrated score of the top class is "
        "below this; default: the threshold the version was calibrated with on its validation split",
        examples=[0.8],
    )
    explain: bool = Field(
        False,
        description="per text, the terms that drive the top class, with signed contributions (the drop in "
        "its calibrated probability when the term is removed); limited to a few texts per request",
    )

    @model_validator(mode="after")
    def _one_of(self) -> ClassifyRequest:
        if (self.text is None) == (self.texts is None):
            raise ValueError("give exactly one of `text` (a string) or `texts` (a list of strings)")
        return self

    @property
    def items(self) -> list[str]:
        return [self.text] if self.text is not None else list(self.texts or [])


class ModelRef(BaseModel):
    name: str = Field(examples=["news"])
    version: int = Field(examples=[3], description="the TF Serving version that answered")


class LabelScore(BaseModel):
    label: str = Field(examples=["sports"])
    score: float = Field(examples=[0.93], description="calibrated probability")


class TermContribution(BaseModel):
    term: str = Field(examples=["striker"], description="a vocabulary term (word, word pair or characters)")
    contribution: float = Field(
        examples=[0.21],
        description="calibrated probability of the explained label with the term minus without it; "
        "positive terms support the label, negative ones argue against it",
    )
    weight: float = Field(examples=[0.12], description="the term's TF-IDF weight in this text")


class Explanation(BaseModel):
    label: str = Field(examples=["sports"], description="the class explained: the most probable one")
    method: str = Field("occlusion", examples=["occlusion"])
    terms: list[TermContribution] = Field(
        description="the text's heaviest terms (up to the configured cap), strongest support first"
    )


class Prediction(BaseModel):
    label: str | None = Field(
        examples=["sports"],
        description="null (or the configured unknown label) when the model abstains",
    )
    score: float = Field(examples=[0.97], description="calibrated probability of the most probable class")
    abstained: bool = Field(
        False, description="true when `score` is below the confidence threshold: the model does not know"
    )
    probabilities: dict[str, float] | None = Field(
        None, description="every class (calibrated), when requested"
    )
    top_k: list[LabelScore] | None = Field(None, description="the k most probable labels, when requested")
    explanation: Explanation | None = Field(None, description="when `explain` is true")


class ClassifyResponse(BaseModel):
    model: ModelRef
    predictions: list[Prediction]


class LegacyClassifyRequest(BaseModel):
    """The original request shape, kept so existing clients keep working."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"text": _EXAMPLE}]})
    text: str


class LegacyClassifyResponse(BaseModel):
    prediction: str = Field(examples=["sports"], description="the label, under the original service's key")
    label: str
    score: float = Field(description="calibrated probability of `label`")
    abstained: bool = Field(
        False, description="the score is below the version's confidence threshold (the label is given anyway)"
    )
    model: str
    version: int


class CalibrationInfo(BaseModel):
    temperature: float = Field(examples=[1.8], description="log-probabilities are divided by it; 1 = none")
    abstain_threshold: float | None = Field(
        examples=[0.62], description="abstain below this calibrated score; null = never"
    )
    target_precision: float | None = Field(
        examples=[0.99], description="precision the threshold reached on the validation split"
    )


class ModelInfo(BaseModel):
    name: str
    version: int
    labels: list[str]
    vectorizer_fingerprint: str
    analyzer: str
    # a list, not tuple[int, int]: a tuple becomes `prefixItems`, which many OpenAPI tools (schemathesis
    # included) do not read; the JSON is the same [min_n, max_n]
    ngram_range: list[int] = Field(min_length=2, max_length=2, examples=[[1, 2]])
    n_features: int
    metrics: dict[str, Any] = Field(description="evaluation of this version on its held-out test split")
    calibration: CalibrationInfo | None = Field(
        None, description="how scores are calibrated and when to abstain"
    )
    # model lifecycle
    rollout: RolloutInfo | None = Field(
        None, description="declared stable/canary versions, traffic share, fallback, per-version counters"
    )


class Health(BaseModel):
    status: str = Field(examples=["ok"])


class Ready(BaseModel):
    status: str = Field(examples=["ready"])
    model: str | None = None
    version: int | None = None
    detail: str | None = None


class ErrorDetail(BaseModel):
    code: str = Field(examples=["invalid_input"])
    message: str = Field(examples=["text 1 is empty"])
    request_id: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": desc}
    for code, desc in (
        (401, "missing or wrong API key (only when keys are configured)"),
        (413, "request body over the configured limit"),
        (422, "invalid JSON, wrong types, empty text, too many texts or characters"),
        (502, "TF Serving rejected the request"),
        (503, "no model version ready, or TF Serving unreachable; retry after Retry-After seconds"),
        (504, "TF Serving did not answer within the deadline"),
    )
}
