"""API-key checks: bearer header, browser subprotocol, off when unset; subprotocol echo; client
secrets open the realtime endpoint only."""

from __future__ import annotations

from server.auth import Authenticator, bearer_token, choose_subprotocol


def test_without_a_key_everything_passes():
    auth = Authenticator(None)
    assert not auth.enabled and auth.allows({})


def test_bearer_header():
    auth = Authenticator("s3cret")
    assert auth.allows({"authorization": "Bearer s3cret"})
    assert auth.allows({"authorization": "bearer s3cret"})
    assert not auth.allows({"authorization": "Bearer s3cre"})
    assert not auth.allows({"authorization": "Basic s3cret"})
    assert not auth.allows({})


def test_browser_subprotocol_carries_the_key():
    auth = Authenticator("s3cret")
    assert auth.allows({}, ["realtime", "openai-insecure-api-key.s3cret"])
    assert not auth.allows({}, ["realtime", "openai-insecure-api-key.wrong"])
    assert not auth.allows({}, ["s3cret"])


def test_bearer_parsing():
    assert bearer_token({"authorization": "Bearer  abc "}) == "abc"
    assert bearer_token({"authorization": "Bearer"}) is None


def test_subprotocol_echo_prefers_realtime_and_hides_keys():
    assert choose_subprotocol(["openai-insecure-api-key.k", "realtime"]) == "realtime"
    assert choose_subprotocol(["openai-insecure-api-key.k", "openai-beta.realtime-v1"]) == (
        "openai-beta.realtime-v1")
    assert choose_subprotocol(["openai-insecure-api-key.k"]) is None  # never echo a key
    assert choose_subprotocol([]) is None


def test_a_client_secret_opens_realtime_only():
    auth = Authenticator("s3cret")
    secret = auth.secrets.mint(60).value
    assert auth.allows_realtime({"authorization": f"Bearer {secret}"}, [])
    assert auth.allows_realtime({}, ["realtime", f"openai-insecure-api-key.{secret}"])
    assert auth.allows_realtime({"authorization": "Bearer s3cret"}, [])  # the key still does
    assert not auth.allows({"authorization": f"Bearer {secret}"})  # REST: the key only
    assert not auth.allows_realtime({"authorization": "Bearer ek_guess"}, [])
