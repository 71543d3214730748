"""Ephemeral client secrets: `POST /v1/realtime/client_secrets` mints short-lived `ek_…` keys.

A browser page must never hold the server's API key. Whoever holds the key (an app's backend, or
this server's own page endpoint, server/web.py) mints a secret that opens `/v1/realtime` (bearer
header or `openai-insecure-api-key.` subprotocol) until it expires, and nothing else: REST and
minting still need the key. The request and answer follow OpenAI's GA shape. Secrets live in
memory as digests; this module knows nothing of sessions or the model.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.responses import JSONResponse, Response

from server.errors import ErrorCode, error_response

SECRET_PREFIX = "ek_"
DEFAULT_TTL_S = 600  # OpenAI's default lifetime
MIN_TTL_S, MAX_TTL_S = 10, 7200  # the bounds OpenAI accepts
SECRET_BYTES = 24
router = APIRouter()


@dataclass(frozen=True)
class Minted:
    value: str
    expires_at: int  # unix seconds


class ClientSecretStore:
    """Live secrets by digest; a secret opens realtime sessions until `expires_at` (reusable)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock  # unix seconds now
        self._expiry_by_digest: dict[bytes, float] = {}
        self._lock = threading.Lock()  # REST handlers and the WebSocket handshake share it

    def mint(self, ttl_s: float) -> Minted:
        if not MIN_TTL_S <= ttl_s <= MAX_TTL_S:
            raise ValueError(f"ttl_s must be in {MIN_TTL_S}..{MAX_TTL_S}, got {ttl_s}")
        value = SECRET_PREFIX + secrets.token_urlsafe(SECRET_BYTES)
        expires_at = int(self.clock() + ttl_s)
        with self._lock:
            self._forget_expired()
            self._expiry_by_digest[_digest(value)] = expires_at
        return Minted(value, expires_at)

    def valid(self, candidate: str) -> bool:
        """Whether `candidate` is a secret minted here that has not expired yet."""
        if not candidate.startswith(SECRET_PREFIX):
            return False
        with self._lock:
            expires_at = self._expiry_by_digest.get(_digest(candidate))
            return expires_at is not None and self.clock() < expires_at

    def __len__(self) -> int:
        with self._lock:
            self._forget_expired()
            return len(self._expiry_by_digest)

    def _forget_expired(self) -> None:
        now = self.clock()
        for digest in [d for d, at in self._expiry_by_digest.items() if at <= now]:
            del self._expiry_by_digest[digest]


class ExpiresAfter(BaseModel):
    model_config = ConfigDict(extra="forbid")
    anchor: Literal["created_at"] = "created_at"
    seconds: int = Field(DEFAULT_TTL_S, ge=MIN_TTL_S, le=MAX_TTL_S)


class ClientSecretRequest(BaseModel):
    """OpenAI's GA request: `{"expires_after": {...}, "session": {...}}`, both optional."""

    model_config = ConfigDict(extra="forbid")
    expires_after: ExpiresAfter = ExpiresAfter()
    session: dict[str, Any] = Field(default_factory=dict)


def session_echo(session: dict[str, Any]) -> dict[str, Any]:
    """The session configuration the answer carries: what was asked, GA type and model filled."""
    return {"type": "realtime", "model": "icot", **session}


def mint_answer(store: ClientSecretStore, request: ClientSecretRequest) -> dict[str, Any]:
    minted = store.mint(request.expires_after.seconds)
    return {"value": minted.value, "expires_at": minted.expires_at,
            "session": session_echo(request.session)}


@router.post("/v1/realtime/client_secrets")
async def create_client_secret(request: Request) -> Response:
    state = request.app.state.icot
    if not state.auth.allows(request.headers):
        return error_response(state.metrics, 401, ErrorCode.UNAUTHORIZED,
                              "minting a client secret needs the server's API key "
                              "(Authorization: Bearer KEY)")
    raw = await request.body()
    try:
        body = ClientSecretRequest.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        first = exc.errors()[0]
        code = {"missing": ErrorCode.MISSING_FIELD, "json_invalid": ErrorCode.INVALID_JSON}.get(
            first["type"], ErrorCode.INVALID_VALUE)
        where = ".".join(str(p) for p in first["loc"]) or "body"
        return error_response(state.metrics, 400, code, f"{where}: {first['msg']}")
    return JSONResponse(mint_answer(state.auth.secrets, body))


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8")).digest()
