"""Reading and validating JSON bodies with OpenAI-style errors (never FastAPI's 422 shape)."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from ..errors import InvalidRequest

M = TypeVar("M", bound=BaseModel)

_PARSE = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP "
    "library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
)


async def json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        data = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        raise InvalidRequest(_PARSE, code="invalid_json") from None
    if not isinstance(data, dict):
        raise InvalidRequest(_PARSE if data is None else "The request body must be a JSON object.", code="invalid_json")
    return data


def validate(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise from_validation_error(e) from None


def from_validation_error(e: ValidationError | Any) -> InvalidRequest:
    errs = e.errors() if hasattr(e, "errors") else []
    first = errs[0] if errs else {"loc": (), "msg": "invalid request"}
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body",)]
    param = ".".join(loc) or None
    kind = first.get("type", "")
    code = "missing_required_parameter" if kind == "missing" else "invalid_value"
    msg = f"Missing required parameter: '{param}'." if kind == "missing" else f"Invalid value for '{param}': {first.get('msg')}"
    return InvalidRequest(msg, param=param, code=code)
