"""Optional API-key check for every endpoint except the health probes and the page.

A key arrives as `Authorization: Bearer <key>` or, from browsers (which cannot set headers on
a WebSocket), as the subprotocol `openai-insecure-api-key.<key>`. Keys are compared in constant
time (digests of equal length, `hmac.compare_digest`). Keys are never logged or echoed back.
`/v1/realtime` also opens to a live ephemeral client secret (server/client_secrets.py); every
other endpoint takes the key only.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence

from server.client_secrets import ClientSecretStore

SUBPROTOCOL_KEY_PREFIX = "openai-insecure-api-key."
PREFERRED_SUBPROTOCOL = "realtime"


class Authenticator:
    """Checks requests against one configured key; with no key every request passes."""

    def __init__(self, api_key: str | None) -> None:
        self._digest = _digest(api_key) if api_key is not None else None
        self.secrets = ClientSecretStore()

    @property
    def enabled(self) -> bool:
        return self._digest is not None

    def allows(self, headers: Mapping[str, str], subprotocols: Sequence[str] = ()) -> bool:
        """Whether the bearer header or a key subprotocol carries the configured key."""
        if self._digest is None:
            return True
        # Compare every candidate so the time taken does not say which one matched.
        matches = [hmac.compare_digest(_digest(key), self._digest)
                   for key in _offered_keys(headers, subprotocols)]
        return any(matches)

    def allows_realtime(self, headers: Mapping[str, str], subprotocols: Sequence[str]) -> bool:
        """`allows`, or a live ephemeral client secret in the bearer header or a subprotocol."""
        if self.allows(headers, subprotocols):
            return True
        return any(self.secrets.valid(key) for key in _offered_keys(headers, subprotocols))


def bearer_token(headers: Mapping[str, str]) -> str | None:
    value = headers.get("authorization")
    if value is None:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def choose_subprotocol(offered: Sequence[str]) -> str | None:
    """The subprotocol to echo on accept: browsers fail the handshake unless one is echoed.

    `realtime` when offered, else the first that does not carry a key; a key subprotocol is
    never echoed (the key would travel back in the response headers), so a client that offers
    only a key gets none.
    """
    if PREFERRED_SUBPROTOCOL in offered:
        return PREFERRED_SUBPROTOCOL
    plain = [p for p in offered if not p.startswith(SUBPROTOCOL_KEY_PREFIX)]
    return plain[0] if plain else None


def _offered_keys(headers: Mapping[str, str], subprotocols: Sequence[str]) -> list[str]:
    offered = [bearer_token(headers)] + [
        p[len(SUBPROTOCOL_KEY_PREFIX):] for p in subprotocols
        if p.startswith(SUBPROTOCOL_KEY_PREFIX)
    ]
    return [key for key in offered if key is not None]


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()
