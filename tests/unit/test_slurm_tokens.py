"""Per-person Slurm tokens: what Slurm checks (HS256, sun, exp), renewal, rotation, and no key or token in errors."""

from __future__ import annotations

import os
import time
from pathlib import Path

import jwt
import pytest

from daas_core.commands import CommandFailed
from daas_spawner.backends.slurm.tokens import CommandTokens, KeyTokens


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "jwt_hs256.key"
    path.write_bytes(os.urandom(32))
    path.chmod(0o400)
    return path


def claims(token: str, key_file: Path) -> dict:
    """The token's claims if `key_file`'s key signed it (times unchecked: some tests move the clock)."""
    return jwt.decode(
        token, key_file.read_bytes(), algorithms=["HS256"], options={"verify_iat": False, "verify_exp": False}
    )


async def test_a_token_is_what_scontrol_token_prints(key_file: Path) -> None:
    token = await KeyTokens(str(key_file), lifetime=600).token("alice")
    found = claims(token, key_file)
    assert found["sun"] == "alice"
    assert found["exp"] - found["iat"] == 600
    assert abs(found["iat"] - time.time()) < 5


async def test_tokens_are_reused_until_half_their_life_then_renewed(key_file: Path, monkeypatch) -> None:
    tokens = KeyTokens(str(key_file), lifetime=600)
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now)
    first = await tokens.token("alice")
    assert await tokens.token("alice") == first
    assert await tokens.token("bob") != first
    monkeypatch.setattr(time, "time", lambda: now + 301)
    renewed = await tokens.token("alice")
    assert renewed != first
    assert claims(renewed, key_file)["exp"] == int(now + 301) + 600
    assert tokens.minted == 3


async def test_a_forgotten_token_is_minted_again(key_file: Path) -> None:
    tokens = KeyTokens(str(key_file), lifetime=600)
    await tokens.token("alice")
    tokens.forget("alice")
    await tokens.token("alice")
    assert tokens.minted == 2


def rotate(key_file: Path) -> None:
    key_file.chmod(0o600)
    key_file.write_bytes(os.urandom(32))
    later = time.time_ns() + 10**9  # a new mtime even on coarse clocks
    os.utime(key_file, ns=(later, later))


async def test_a_rotated_key_signs_the_next_token(key_file: Path) -> None:
    tokens = KeyTokens(str(key_file), lifetime=600)
    await tokens.token("alice")
    old_key = key_file.read_bytes()  # noqa: ASYNC240 (a test's small file)
    rotate(key_file)
    tokens.forget("alice")  # as after Slurm refused the old key's token
    token = await tokens.token("alice")
    assert claims(token, key_file)["sun"] == "alice"
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, old_key, algorithms=["HS256"], options={"verify_iat": False})


async def test_an_unreadable_key_is_named_without_its_content(tmp_path: Path) -> None:
    tokens = KeyTokens(str(tmp_path / "missing.key"), lifetime=600)
    assert "missing.key" in (tokens.check() or "")
    with pytest.raises(CommandFailed, match=r"cannot be read from .*missing\.key"):
        await tokens.token("alice")
    empty = tmp_path / "empty.key"
    empty.touch()
    assert "empty" in (KeyTokens(str(empty), lifetime=600).check() or "")


def helper(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "token-helper"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return script


async def test_a_helper_command_gets_the_user_and_lifespan_as_arguments(tmp_path: Path) -> None:
    script = helper(tmp_path, 'echo "SLURM_JWT=token-for-$1-$2"')
    tokens = CommandTokens([str(script)], lifetime=90, timeout=5)
    assert tokens.check() is None
    assert await tokens.token("carol") == "token-for-username=carol-lifespan=90"


async def test_a_helper_that_prints_no_token_fails_without_echoing_its_output(tmp_path: Path) -> None:
    script = helper(tmp_path, 'echo "secret-looking-output"')
    with pytest.raises(CommandFailed, match="printed no SLURM_JWT") as failure:
        await CommandTokens([str(script)], lifetime=90, timeout=5).token("carol")
    assert "secret-looking-output" not in str(failure.value)


def test_a_missing_helper_is_named(tmp_path: Path) -> None:
    assert "not executable" in (CommandTokens([str(tmp_path / "nope")], lifetime=90, timeout=5).check() or "")
    assert "empty" in (CommandTokens([], lifetime=90, timeout=5).check() or "")
