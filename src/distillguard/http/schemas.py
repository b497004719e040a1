"""Request models of the public API: validation and the OpenAPI document.

Unknown fields are allowed (and forwarded upstream), as OpenAI adds parameters often; the fields
we check are the ones the gateway acts on or that would otherwise fail deep inside.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ContentPart(_Open):
    type: str
    text: str | None = None


class ChatMessage(_Open):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: Union[str, list[ContentPart], None] = None
    name: str | None = None


class StreamOptions(_Open):
    include_usage: bool = False


Stop = Union[str, Annotated[list[str], Field(max_length=4)], None]


class ChatCompletionRequest(_Open):
    model: str = Field(min_length=1, max_length=256)
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    n: int = Field(default=1, ge=1, le=128)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: Stop = None
    seed: int | None = None
    user: str | None = None


class CompletionRequest(_Open):
    model: str = Field(min_length=1, max_length=256)
    prompt: Union[str, list[str], list[int], list[list[int]]]
    max_tokens: int | None = Field(default=None, ge=1)
    n: int = Field(default=1, ge=1, le=128)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: Stop = None
    user: str | None = None


class EmbeddingRequest(_Open):
    model: str = Field(min_length=1, max_length=256)
    input: Union[str, list[str], list[int], list[list[int]]]
    dimensions: int | None = Field(default=None, ge=1, le=4096)
    encoding_format: Literal["float", "base64"] = "float"
    user: str | None = None


class OrgCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=255)
    use_case: str | None = None
    purposes: list[str] = Field(default_factory=list)


class Reason(BaseModel):
    reason: str = Field(min_length=1)


class Message(BaseModel):
    message: str = Field(min_length=1)


class ProjectCreate(BaseModel):
    name: str = Field(min_length=1, max_length=255)


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    org: str
    name: str | None = None
    project: str | None = None


class LimitsSet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    org: str | None = None
    key: str | None = None
    rpm: int | None = Field(default=None, ge=0)
    tpm: int | None = Field(default=None, ge=0)
    daily_tokens: int | None = Field(default=None, ge=0)
    monthly_tokens: int | None = Field(default=None, ge=0)


PUBLIC_MODELS: list[type[BaseModel]] = [ChatCompletionRequest, CompletionRequest, EmbeddingRequest]
ADMIN_MODELS: list[type[BaseModel]] = [OrgCreate, Reason, Message, ProjectCreate, KeyCreate, LimitsSet]


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` for a route that validates its JSON body itself."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
        }
    }
