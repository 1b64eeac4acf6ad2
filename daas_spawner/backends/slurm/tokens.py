"""Short-lived Slurm JWTs, one per person, for the REST transport: minted with the site's key or by a helper.

A token is `{"sun": <user>, "iat", "exp"}` signed HS256 with the cluster's `jwt_hs256.key`
(what `scontrol token` prints). Whoever holds the key can act as anyone on the cluster, so the
hub keeps it in memory only, reads it again when the file changes (rotation), and never logs a
token: not in messages, not in errors.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence

import jwt

from daas_core.commands import CommandFailed, run_command


class UserTokens(ABC):
    """Tokens by user name, reused until half their lifetime has passed, dropped after a failed request."""

    def __init__(self, lifetime: int) -> None:
        self.lifetime = lifetime
        self._tokens: dict[str, tuple[str, float]] = {}  # user -> (token, renew after)
        self.minted = 0

    async def token(self, username: str) -> str:
        cached = self._tokens.get(username)
        now = time.time()
        if cached is not None and now < cached[1]:
            return cached[0]
        token = await self._mint(username)
        self.minted += 1
        self._tokens[username] = (token, now + self.lifetime / 2)
        return token

    def forget(self, username: str) -> None:
        """Mint afresh next time (Slurm refused the request: the key may have rotated)."""
        self._tokens.pop(username, None)

    def check(self) -> str | None:
        """What keeps this source from minting at all, or None."""
        return None

    @abstractmethod
    async def _mint(self, username: str) -> str: ...


class KeyTokens(UserTokens):
    """Tokens signed here with the cluster's HS256 key, read from a file the site gives the hub."""

    def __init__(self, key_file: str, lifetime: int) -> None:
        super().__init__(lifetime)
        self.key_file = key_file
        self._key: bytes = b""
        self._key_stamp: tuple[int, int] | None = None

    def _current_key(self) -> bytes:
        """The key, read again when the file changed (a rotated key takes effect without a hub restart)."""
        try:
            info = os.stat(self.key_file)
            stamp = (info.st_mtime_ns, info.st_size)
            if stamp != self._key_stamp:
                with open(self.key_file, "rb") as handle:
                    key = handle.read()
                if not key:
                    raise OSError("the file is empty")
                self._key, self._key_stamp = key, stamp
        except OSError as err:
            raise CommandFailed(
                "the Slurm JWT key", f"cannot be read from {self.key_file} ({err.strerror or err})"
            ) from None
        return self._key

    def check(self) -> str | None:
        try:
            self._current_key()
        except CommandFailed as err:
            return str(err)
        return None

    async def _mint(self, username: str) -> str:
        key = self._current_key()
        now = int(time.time())
        return jwt.encode({"sun": username, "iat": now, "exp": now + self.lifetime}, key, algorithm="HS256")


class CommandTokens(UserTokens):
    """Tokens from a privileged helper, e.g. `sudo -n -u slurm -- scontrol token`: the hub never holds the key."""

    def __init__(self, argv: Sequence[str], lifetime: int, timeout: float) -> None:
        super().__init__(lifetime)
        self.argv = list(argv)
        self.timeout = timeout

    def check(self) -> str | None:
        if not self.argv:
            return "c.SlurmRest.token_command is empty"
        if not os.access(self.argv[0], os.X_OK):
            return f"the token command {self.argv[0]} is not executable by the hub"
        return None

    async def _mint(self, username: str) -> str:
        argv = [*self.argv, f"username={username}", f"lifespan={self.lifetime}"]
        result = await run_command(argv, timeout=self.timeout, name="the token command")
        for line in result.stdout.splitlines():
            name, _, value = line.strip().partition("=")
            if name == "SLURM_JWT" and value:
                return value
        raise CommandFailed("the token command", "printed no SLURM_JWT=... line")
