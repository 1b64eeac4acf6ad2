"""AccountPolicy: the hub acts only as people's accounts (real passwd entries of this machine)."""

from __future__ import annotations

import grp
from pathlib import Path

import pytest

from daas_core.accounts import AccountPolicy, AccountRefused, login_defs_uid_range
from daas_services.data.as_user import ReaderError, UserReader
from daas_spawner.backends.base import SpawnFailed
from daas_spawner.backends.slurm.backend import SlurmBackend

PEOPLE = AccountPolicy(1000, 60000)


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("root", "root is a system account (uid 0, people's accounts are 1000-60000)"),
        ("daemon", "daemon is a system account (uid 1,"),
        ("nobody", "nobody is a system account (uid 65534,"),
        ("no-such-account", "no-such-account has no Unix account here"),
        ("root\n", "'root\\n' is not a Unix account name"),
        ("Root", "'Root' is not a Unix account name"),
    ],
)
def test_system_accounts_and_non_names_are_refused(name: str, why: str) -> None:
    with pytest.raises(AccountRefused) as refused:
        PEOPLE.check(name)
    assert str(refused.value).startswith(why)


def test_the_range_and_the_group_decide() -> None:
    root_group = grp.getgrgid(0).gr_name
    assert AccountPolicy(0, 0).check("root").pw_uid == 0
    assert AccountPolicy(0, 0, group=root_group).check("root").pw_uid == 0  # primary group counts
    with pytest.raises(AccountRefused, match="not in the group nogroup"):
        AccountPolicy(0, 0, group="nogroup").check("root")
    with pytest.raises(AccountRefused, match="not in the group no-such-group"):
        AccountPolicy(0, 0, group="no-such-group").check("root")


def test_the_range_comes_from_login_defs(tmp_path: Path) -> None:
    defs = tmp_path / "login.defs"
    defs.write_text("# comment\nUID_MIN\t\t 2000\nUID_MAX 59999\nSYS_UID_MAX 999\n")
    assert login_defs_uid_range(str(defs)) == (2000, 59999)
    assert login_defs_uid_range(str(tmp_path / "missing")) == (1000, 60000)


def test_a_backend_refuses_root_before_anything_runs() -> None:
    backend = SlurmBackend(min_uid=1000, max_uid=60000)
    with pytest.raises(SpawnFailed, match="No server for this account: root is a system account"):
        backend.account("root")
    assert (backend.min_uid, backend.max_uid) == (1000, 60000)


def test_the_data_reader_is_never_started_as_root() -> None:
    reader = UserReader(prefix=["sudo", "-n", "-u", "{username}", "--"], command=["reader"], accounts=PEOPLE)
    with pytest.raises(ReaderError) as refused:
        reader.argv("root")
    assert refused.value.status == 403 and "root is a system account" in str(refused.value)
    # With no user in the prefix, the service's own account reads (the single-account demo): no account needed.
    assert UserReader(prefix=[], command=["reader"], accounts=PEOPLE).argv("scientist") == ["reader"]
