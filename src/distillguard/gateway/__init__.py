"""The request pipeline: authenticate → reserve limits → upstream → reconcile → ledger → observers.

Plain function calls on small interfaces; the HTTP layer only translates to and from HTTP.
"""

from .context import RequestContext
from .pipeline import Gateway, Result

__all__ = ["Gateway", "RequestContext", "Result"]
