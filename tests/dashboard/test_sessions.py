"""Session cookies are sealed (unreadable, unforgeable, expiring) and CSRF tokens are bound to them."""

from __future__ import annotations

import time

from services.dashboard.adapters.sessions import SessionCodec, csrf_valid

SECRET = "x" * 40


def test_a_sealed_session_opens_with_the_same_secret_only() -> None:
    sealed, session = SessionCodec(SECRET, 60).seal("dev-safety_officer", ("safety_officer",), "tok-123")
    assert "tok-123" not in sealed and "safety_officer" not in sealed
    assert SessionCodec(SECRET, 60).open(sealed) == session
    assert SessionCodec("y" * 40, 60).open(sealed) is None
    assert SessionCodec(SECRET, 60).open(sealed[:-4] + "AAAA") is None


def test_an_expired_session_does_not_open() -> None:
    codec = SessionCodec(SECRET, 1)
    sealed, _ = codec.seal("u", ("dmc_member",), "t")
    time.sleep(2.1)
    assert codec.open(sealed) is None


def test_csrf_token_must_match_the_sessions() -> None:
    _, session = SessionCodec(SECRET, 60).seal("u", ("dmc_member",), "t")
    assert csrf_valid(session, session.csrf)
    assert not csrf_valid(session, None)
    assert not csrf_valid(session, session.csrf + "x")


def test_sign_in_csrf_is_bound_to_its_nonce() -> None:
    codec = SessionCodec(SECRET, 60)
    nonce = codec.login_nonce()
    assert codec.login_csrf_valid(nonce, codec.login_csrf(nonce))
    assert not codec.login_csrf_valid(codec.login_nonce(), codec.login_csrf(nonce))
    assert not codec.login_csrf_valid(None, codec.login_csrf(nonce))


def test_a_dmc_member_alone_may_not_act() -> None:
    codec = SessionCodec(SECRET, 60)
    assert not codec.seal("u", ("dmc_member",), "t")[1].may_act()
    assert codec.seal("u", ("dmc_member", "safety_officer"), "t")[1].may_act()
