"""Whose ids a pod runs with: the name service's account, or the ids the login carried (auth_state)."""

from __future__ import annotations

import os
import pwd
from types import SimpleNamespace

import pytest

from daas_core.identity import PosixIdentity
from daas_spawner.backends.base import SpawnFailed
from daas_spawner.backends.kubernetes.backend import KubernetesBackend


def launch(username: str, identity: PosixIdentity | None = None) -> SimpleNamespace:
    return SimpleNamespace(username=username, identity=identity)


def backend(**config) -> KubernetesBackend:
    return KubernetesBackend(min_uid=1000, max_uid=60000, account_group="", **config)


def a_persons_account() -> pwd.struct_passwd:
    for account in pwd.getpwall():
        if 1000 <= account.pw_uid <= 60000:
            return account
    pytest.skip("no account in the people's uid range on this machine")


def test_passwd_ids_are_the_accounts_with_its_groups():
    account = a_persons_account()
    identity = backend().identity(launch(account.pw_name, PosixIdentity(50000, 50000)))
    assert (identity.uid, identity.gid) == (account.pw_uid, account.pw_gid)  # the login's ids are not used
    assert set(identity.groups) == set(os.getgrouplist(account.pw_name, account.pw_gid))


def test_passwd_refuses_a_system_account():
    with pytest.raises(SpawnFailed, match="system account"):
        backend().identity(launch("root"))


def test_auth_state_ids_are_the_logins():
    ids = PosixIdentity(41234, 4100, (5001,))
    assert backend(identity_source="auth_state").identity(launch("someone", ids)) == ids


def test_auth_state_without_ids_refuses_the_start():
    with pytest.raises(SpawnFailed, match="yours carried none"):
        backend(identity_source="auth_state").identity(launch("someone"))


@pytest.mark.parametrize("uid", [999, 60001])
def test_auth_state_ids_outside_peoples_range_are_refused(uid):
    with pytest.raises(SpawnFailed, match=f"uid {uid} is not a person's account"):
        backend(identity_source="auth_state").identity(launch("someone", PosixIdentity(uid, 4100)))


def test_an_unknown_source_is_a_configuration_error():
    with pytest.raises(Exception, match="identity_source"):
        backend(identity_source="ldap")
