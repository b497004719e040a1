"""Conversation continuity: a follow-up counts only when it continues an answer this account was actually served.

``follow_up`` (the share of turns that build on the previous answer) is among the strongest benign signals: people
talk with the model, harvesters collect one answer per prompt. But the history of a request is written by the
client. A harvester can put a made-up exchange before every prompt (an "answer" that restates the prompt) for the
price of a few input tokens, and every request then looks like a follow-up (``detect.evasion``'s ``history``
rewrite took the share of flagged harvesters on dev traffic from 0.94 to 0.22).

So an account keeps the keys (``features.answer_key``: a hash of the answer's head, letters and digits only, so that
a client that re-wraps whitespace or strips markdown keeps it) of the answers it was served, and a request's
``follow_up`` stands only when the history's last answer is one of them. Each served answer backs at most
``CREDITS`` follow-ups (a conversation continues from its latest answer; an edited or regenerated turn may reuse
it once), so replaying one real answer before every prompt earns nothing either. A follow-up that is not backed
only loses its lowering: it never counts for distillation.

Limits: an account keeps its last ``MAX_KEYS`` served answers; a follow-up to an older answer, or to one served
to another account (a conversation moved between organisations), is not credited; nor is continuing one choice of
an ``n > 1`` answer, which the ledger keeps joined, unless it is the first and at least as long as the key's head.
Traffic must come in time order per account, as the ledger and ``distillguard detect`` provide it.
"""

from __future__ import annotations

import dataclasses

from .features import RequestFeatures

CREDITS = 2  # follow-ups one served answer can back
MAX_KEYS = 8192  # served answers remembered per account, oldest forgotten first (~0.6 MB when full; 65,536 would
# be ~4.7 MB, too much for an online detector holding thousands of busy accounts)


class ServedAnswers:
    """The recently served answers of one account, with the follow-ups each can still back."""

    __slots__ = ("_left",)

    def __init__(self) -> None:
        self._left: dict[int, int] = {}  # answer key -> follow-ups it can still back (insertion order = age)

    def __len__(self) -> int:
        return len(self._left)

    def served(self, key: int) -> None:
        """An answer with this key was served to the account."""
        if not key:
            return
        left = self._left
        left.pop(key, None)  # served again: young again
        left[key] = CREDITS
        if len(left) > MAX_KEYS:
            del left[next(iter(left))]

    def take(self, key: int) -> bool:
        """Whether a follow-up of the answer with this key is backed (and use up one of its credits)."""
        left = self._left
        n = left.get(key)
        if not n:
            return False
        if n > 1:
            left[key] = n - 1
        else:
            del left[key]
        return True

    def check(self, f: RequestFeatures) -> RequestFeatures:
        """``f`` as the account's stream should see it: a follow-up of no answer served to the account loses its
        ``follow_up`` (in a copy: features may be shared); then ``f``'s own answer is remembered."""
        if f.follow_up and not self.take(f.prev_key):
            f = dataclasses.replace(f, follow_up=False)
        self.served(f.answer_key)
        return f
