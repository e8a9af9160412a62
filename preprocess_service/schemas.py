"""Request and response models: the OpenAPI document at /docs is generated from these."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

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
            ]
        },
    )
    text: str | None = Field(None, description="one text; give either `text` or `texts`")
    texts: list[str] | None = Field(None, description="a batch of texts", min_length=1)
    return_probabilities: bool = Field(False, description="include every class probability per text")

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


class Prediction(BaseModel):
    label: str = Field(examples=["sports"])
    score: float = Field(examples=[0.97], description="probability of `label`")
    probabilities: dict[str, float] | None = Field(None, description="every class, when requested")


class ClassifyResponse(BaseModel):
    model: ModelRef
    predictions: list[Prediction]


class LegacyClassifyRequest(BaseModel):
    """The original request shape, kept so existing clients keep working."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"text": _EXAMPLE}]})
    text: str


class LegacyClassifyResponse(BaseModel):
    label: str
    score: float
    model: str
    version: int


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
