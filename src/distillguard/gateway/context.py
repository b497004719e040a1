"""What the pipeline knows about one request besides its body."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..access.models import Principal
from ..ledger.record import new_request_id


@dataclass(slots=True)
class RequestContext:
    endpoint: str  # "/v1/chat/completions", ...
    authorization: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    request_id: str = field(default_factory=new_request_id)
    started: float = field(default_factory=time.time)
    t0: float = field(default_factory=time.perf_counter)
    principal: Principal | None = None
    recorded: bool = False  # a ledger record was written for this request

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.t0) * 1000.0
