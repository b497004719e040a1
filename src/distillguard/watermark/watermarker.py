"""The gateway-facing facade: apply / stream / detect with per-org keys derived from one server secret."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .detect import Verdict, detect, merge, positions
from .embed import StreamEmbedder
from .keys import OrgKey, keys_for
from .lexicon import Lexicon, load_lexicon

DEFAULT_THRESHOLD = 1e-6


class Watermarker:
    """Keyed per-org lexical watermark.

    ``versions`` maps an org to its current key version (default 1): text is embedded with the newest
    version and detection tries every version (and every ``old_secrets`` entry), corrected for the number
    of keys tried.
    """

    def __init__(
        self,
        secret: str,
        *,
        versions: Mapping[str, int] | None = None,
        old_secrets: Iterable[str] = (),
        lexicon: Lexicon | None = None,
        threshold: float = DEFAULT_THRESHOLD,
    ) -> None:
        if not secret:
            raise ValueError("the watermark needs a non-empty secret")
        self._secret = secret
        self._versions = dict(versions or {})
        self._old = tuple(old_secrets)
        self.lexicon = lexicon or load_lexicon()
        self.threshold = threshold
        self._current: dict[str, OrgKey] = {}

    def version(self, org_id: str) -> int:
        return self._versions.get(org_id, 1)

    def key(self, org_id: str) -> OrgKey:
        """The key text for ``org_id`` is embedded with now."""
        k = self._current.get(org_id)
        if k is None:
            k = keys_for(self._secret, org_id, self.version(org_id))[0]
            self._current[org_id] = k
        return k

    def keys(self, org_id: str) -> list[OrgKey]:
        """Every key detection tries for ``org_id``."""
        return keys_for(self._secret, org_id, self.version(org_id), self._old)

    def stream(self, org_id: str) -> StreamEmbedder:
        return StreamEmbedder(self.lexicon, self.key(org_id))

    def apply(self, text: str, org_id: str) -> str:
        s = self.stream(org_id)
        return s.feed(text) + s.flush()

    def detect(self, text: str, org_ids: Iterable[str], threshold: float | None = None) -> Verdict:
        keys = [k for o in dict.fromkeys(org_ids) for k in self.keys(o)]
        return detect(positions(text, self.lexicon), keys, self.threshold if threshold is None else threshold)

    def detect_many(self, texts: Iterable[str], org_ids: Iterable[str], threshold: float | None = None) -> Verdict:
        """One test over several texts (each walked on its own, contexts deduplicated across them)."""
        keys = [k for o in dict.fromkeys(org_ids) for k in self.keys(o)]
        pos = merge(positions(t, self.lexicon) for t in texts)
        return detect(pos, keys, self.threshold if threshold is None else threshold)
