"""Rate limits (RPM/TPM) and token quotas (daily/monthly), behind one interface."""

from .base import Limiter, LimitSpec, RateLimitStatus, Reservation, Subject

__all__ = ["Limiter", "LimitSpec", "RateLimitStatus", "Reservation", "Subject"]
