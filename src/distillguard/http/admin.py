"""The admin API under /admin: its own bearer token (DG_ADMIN_TOKEN), never a customer key.

Answers are the same JSON documents as the CLI's ``--json`` output (contracts §3).
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from ..access import AccessService
from ..detect.declared import declares_fine_tuning, mark_signal
from ..errors import AuthenticationFailed, NotFound
from .body import json_body, validate
from .responses import ORJSONResponse
from .schemas import KeyCreate, LimitsSet, Message, OrgCreate, ProjectCreate, Reason, body_schema


def require_admin(request: Request) -> None:
    expected: str = request.app.state.admin_token
    auth = request.headers.get("authorization") or ""
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise AuthenticationFailed("A valid admin token is required (Authorization: Bearer <DG_ADMIN_TOKEN>).",
                                   code="invalid_admin_token")


router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])


def _access(request: Request) -> AccessService:
    return request.app.state.gateway.access


async def _body(request: Request, model: Any) -> Any:
    return validate(model, await json_body(request))


@router.post("/orgs", openapi_extra=body_schema(OrgCreate), summary="Create an org (Limited Access application)")
async def create_org(request: Request) -> Response:
    b: OrgCreate = await _body(request, OrgCreate)
    org = _access(request).apply(b.name, b.use_case, b.purposes)
    return ORJSONResponse(org.to_dict(), status_code=201)


@router.get("/orgs", summary="List orgs")
async def list_orgs(request: Request, status: str | None = None) -> Response:
    return ORJSONResponse({"orgs": [o.to_dict() for o in _access(request).list_orgs(status)]})


@router.get("/orgs/{org}", summary="Show an org with keys, limits, usage")
async def show_org(org: str, request: Request) -> Response:
    acc = _access(request)
    d = acc.org_details(acc.resolve_org(org).id)
    lim = request.app.state.gateway.limiter
    u = await lim.usage(f"org:{d['id']}")
    d["usage"] = {"daily_tokens": u.daily_tokens, "monthly_tokens": u.monthly_tokens}
    return ORJSONResponse(d)


@router.get("/signals", summary="Accounts the online detector currently flags or labels, highest score first")
async def signals(request: Request) -> Response:
    det = _detector(request)
    if det is None:
        return ORJSONResponse({"accounts": [], "ready": False})
    acc = _access(request)
    return ORJSONResponse({"accounts": [_declared(acc, s, det) for s in det.flagged()], "ready": True})


@router.get("/orgs/{org}/signals", summary="Online detection signals of one org: score, label, reasons")
async def org_signals(org: str, request: Request) -> Response:
    acc = _access(request)
    oid = acc.resolve_org(org).id
    det = _detector(request)
    sig = det.signals(oid) if det is not None else None
    return ORJSONResponse(_declared(acc, sig or {"org": oid, "score": 0.0, "label": "benign", "flagged": False,
                                                 "ring": None, "requests": 0, "reasons": []}, det))


@router.get("/rings", summary="Rings of accounts the last online ring scan flags, highest score first")
async def rings(request: Request) -> Response:
    det = _detector(request)
    if det is None:
        return ORJSONResponse({"rings": [], "scanned_at": None, "ready": False})
    return ORJSONResponse({"rings": det.rings(), "scanned_at": det.last_ring_scan, "ready": True})


@router.post("/rings/scan", summary="Run the online ring scan now (it also runs every DG_DETECTION_RING_INTERVAL_S)")
async def scan_rings(request: Request) -> Response:
    det = _detector(request)
    if det is None:
        return ORJSONResponse({"rings": [], "scanned_at": None, "ready": False})
    await asyncio.to_thread(det.scan_rings)
    return ORJSONResponse({"rings": det.rings(), "scanned_at": det.last_ring_scan, "ready": True})


def _detector(request: Request) -> Any:
    """The online detector, or None while it loads or when detection is off."""
    det = request.app.state.detector
    return det.target if det is not None else None


def _declared(acc: AccessService, signal: dict[str, Any], det: Any = None) -> dict[str, Any]:
    """A signal with its org's declared purposes (``detect.declared``); unchanged for an org no longer stored. A
    declared member of a ring is told how many of the ring's flagged members did not declare fine-tuning."""
    def purposes_of(org: str) -> list[str] | None:
        try:
            return acc.get_org(org).purposes
        except NotFound:
            return None

    purposes = purposes_of(signal["org"])
    if purposes is None:
        return signal
    uncovered = 0
    if det is not None and signal.get("ring") and signal.get("flagged") and declares_fine_tuning(purposes):
        members = det.ring_members(signal["ring"])
        uncovered = sum(1 for m in members if m != signal["org"] and not declares_fine_tuning(purposes_of(m)))
    return mark_signal(signal, purposes, uncovered)


# Account state changes: path action → (AccessService method, body model carrying its text, summary).
STATE_ACTIONS: dict[str, tuple[str, type[Reason] | type[Message] | None, str]] = {
    "approve": ("approve", None, "Approve a Limited Access application"),
    "reject": ("reject", Reason, "Reject an application"),
    "suspend": ("suspend", Reason, "Suspend pending investigation (every replica, next request)"),
    "reinstate": ("reinstate", None, "Reinstate a suspended org (or one that made the required changes)"),
    "terminate": ("terminate", Reason, "Terminate permanently"),
    "require-changes": ("require_changes", Message, "Refuse requests with a message until the org changes"),
}


def _state_route(method: str, model: type[Reason] | type[Message] | None) -> Any:
    async def change_state(org: str, request: Request) -> Response:
        acc = _access(request)
        args: list[str] = [acc.resolve_org(org).id]
        if model is not None:
            b = await _body(request, model)
            args.append(b.reason if isinstance(b, Reason) else b.message)
        return ORJSONResponse(getattr(acc, method)(*args).to_dict())

    change_state.__name__ = method
    return change_state


for _action, (_method, _model, _summary) in STATE_ACTIONS.items():
    router.add_api_route(f"/orgs/{{org}}/{_action}", _state_route(_method, _model), methods=["POST"],
                         summary=_summary, openapi_extra=body_schema(_model) if _model else None)


@router.post("/orgs/{org}/projects", openapi_extra=body_schema(ProjectCreate), summary="Create a project")
async def create_project(org: str, request: Request) -> Response:
    b: ProjectCreate = await _body(request, ProjectCreate)
    acc = _access(request)
    return ORJSONResponse(acc.create_project(acc.resolve_org(org).id, b.name), status_code=201)


@router.post("/keys", openapi_extra=body_schema(KeyCreate), summary="Create an API key (the secret is shown once)")
async def create_key(request: Request) -> Response:
    b: KeyCreate = await _body(request, KeyCreate)
    acc = _access(request)
    key, secret = acc.create_key(acc.resolve_org(b.org).id, b.name, b.project)
    return ORJSONResponse({"id": key.id, "key": secret, "org": key.org_id, "name": key.name,
                           "project": key.project_id}, status_code=201)


@router.post("/keys/{key_id}/revoke", summary="Revoke an API key (immediate)")
async def revoke_key(key_id: str, request: Request) -> Response:
    return ORJSONResponse(_access(request).revoke_key(key_id).to_dict())


@router.post("/limits", openapi_extra=body_schema(LimitsSet), summary="Set limits of an org or a key")
async def set_limits(request: Request) -> Response:
    b: LimitsSet = await _body(request, LimitsSet)
    acc = _access(request)
    return ORJSONResponse(acc.set_limits_for(org=b.org, key=b.key, rpm=b.rpm, tpm=b.tpm, daily_tokens=b.daily_tokens,
                                            monthly_tokens=b.monthly_tokens))

