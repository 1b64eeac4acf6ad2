"""One-time bootstrap secrets stand in for the server's tokens in stored job descriptions (#14, item 3)."""

from __future__ import annotations

from daas_spawner.bootstrap import PendingSecrets, digest, split_secret_env


def test_tokens_are_split_from_what_a_job_description_may_hold() -> None:
    env = {"JUPYTERHUB_API_TOKEN": "t", "JPY_API_TOKEN": "t", "DAAS_ACCESS_TOKEN": "a", "JUPYTERHUB_USER": "alice"}
    public, secret = split_secret_env(env)
    assert public == {"JUPYTERHUB_USER": "alice"}
    assert secret == {"JUPYTERHUB_API_TOKEN": "t", "JPY_API_TOKEN": "t", "DAAS_ACCESS_TOKEN": "a"}


async def test_a_secret_is_redeemed_once_and_not_after_it_is_withdrawn() -> None:
    pending = PendingSecrets()
    first = pending.issue({"JUPYTERHUB_API_TOKEN": "one"})
    second = pending.issue({"JUPYTERHUB_API_TOKEN": "two"})
    assert first != second and len(first) >= 43  # 256 random bits, URL-safe
    assert await pending.redeem("not-" + first) is None
    assert await pending.redeem(first) == {"JUPYTERHUB_API_TOKEN": "one"}
    assert await pending.redeem(first) is None
    pending.withdraw(digest(second))  # the start ended before the job asked
    assert await pending.redeem(second) is None
    assert len(pending) == 0


def test_only_a_digest_of_the_secret_is_kept() -> None:
    pending = PendingSecrets()
    secret = pending.issue({"JUPYTERHUB_API_TOKEN": "t"})
    assert secret not in repr(vars(pending))


async def test_a_resumed_start_puts_a_new_environment_behind_the_stored_digest() -> None:
    pending = PendingSecrets()
    secret = pending.issue({"JUPYTERHUB_API_TOKEN": "old"})
    after_restart = PendingSecrets()  # the hub forgot everything but the digest it stored
    redeemed: list[str] = []

    async def stored() -> None:
        redeemed.append("yes")

    after_restart.reissue(digest(secret), {"JUPYTERHUB_API_TOKEN": "new"}, stored)
    assert await after_restart.redeem(digest(secret)) is None  # the stored digest is no secret
    assert await after_restart.redeem(secret) == {"JUPYTERHUB_API_TOKEN": "new"}
    assert redeemed == ["yes"]
    assert await after_restart.redeem(secret) is None
