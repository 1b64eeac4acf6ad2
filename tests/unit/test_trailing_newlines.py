"""Names that reach sudo, Slurm or a path are matched whole: `^...$` with re.match lets "name\\n" through."""

from __future__ import annotations

import pytest

from daas_auth.proposals import ClaimRule
from daas_core.mounts import is_safe_path
from daas_services.data.as_user import ReaderError, UserReader

SUDO = ["sudo", "-n", "-u", "{username}", "--"]


@pytest.mark.parametrize(
    "name", ["alice\n", "root\n", "alice\nroot", "\nalice", "alice\r", "Alice", "-alice", "a" * 33]
)
def test_no_account_name_with_a_line_break_or_out_of_pattern_reaches_sudo(name: str) -> None:
    with pytest.raises(ReaderError):
        UserReader(prefix=SUDO).argv(name)


def test_a_plain_account_name_does() -> None:
    assert UserReader(prefix=SUDO, command=["reader"]).argv("alice") == ["sudo", "-n", "-u", "alice", "--", "reader"]


def test_a_claim_value_with_a_trailing_newline_gives_no_proposal() -> None:
    rule = ClaimRule(claim="groups", pattern=r"/proposals/(?P<id>[^/]+)")
    assert rule.ids({"groups": ["/proposals/20231234", "/proposals/20230042\n"]}) == ["20231234"]


def test_a_path_segment_with_a_trailing_newline_is_not_safe() -> None:
    assert is_safe_path("/data/visitor/20231234/raw")
    assert not is_safe_path("/data/visitor/20231234\n/raw")
