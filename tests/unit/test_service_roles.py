"""add_service_roles composes with a site's own roles on the config object, as jupyterhub_config.py calls it.

The hub that loads the result is started in tests/integration/test_site_roles.py (JupyterHub 6 and 5).
"""

from __future__ import annotations

from jupyterhub.app import JupyterHub
from traitlets.config import Config

from daas_auth.hub_api import PROPOSALS_SCOPE
from daas_hub import add_service_roles

DATA, DASK = "access:services!service=daas-data", "access:services!service=daas-dask"
SERVER_DEFAULT = ["users:activity!user", "access:servers!server"]  # JupyterHub's own `server` role
HAS_EXTRA_USER_SCOPES = "extra_user_scopes" in JupyterHub.class_trait_names()  # JupyterHub 6


def roles_by_name(c: Config) -> dict[str, dict]:
    names = [role["name"] for role in c.JupyterHub.load_roles]
    assert len(names) == len(set(names)), f"a role defined twice: {names}"  # JupyterHub refuses to start
    return {role["name"]: role for role in c.JupyterHub.load_roles}


def user_scopes(c: Config) -> list[str]:
    """What the `user` role will hold once JupyterHub loads the config."""
    role = roles_by_name(c).get("user")
    if role is not None:
        return role["scopes"]
    return ["self", *sorted(c.JupyterHub.extra_user_scopes)]


def test_a_fresh_config_gets_the_services_roles():
    c = Config()
    add_service_roles(c, "daas-data", "daas-dask")
    roles = roles_by_name(c)
    for name in ("daas-data", "daas-dask"):
        role = roles[f"{name}-service"]
        assert role["services"] == [name]
        assert role["scopes"] == ["read:users", "read:servers", PROPOSALS_SCOPE]  # never admin:auth_state
    assert roles["server"]["scopes"] == [*SERVER_DEFAULT, DATA, DASK]
    assert sorted(user_scopes(c)) == sorted(["self", DATA, DASK])
    if HAS_EXTRA_USER_SCOPES:  # JupyterHub's own hook for the default user role, which then stays its own
        assert "user" not in roles and c.JupyterHub.extra_user_scopes == {DATA, DASK}
    else:
        assert roles["user"]["scopes"] == ["self", DATA, DASK]


def test_a_sites_own_user_and_server_roles_gain_access_and_keep_their_scopes():
    c = Config()
    c.JupyterHub.load_roles = [
        {"name": "admin", "services": ["test-admin"]},
        {"name": "user", "scopes": ["self", "read:groups"]},
        {"name": "server", "scopes": ["users:activity!user", "access:servers!server", "read:users:name"]},
    ]
    add_service_roles(c, "daas-data")
    roles = roles_by_name(c)
    assert roles["user"]["scopes"] == ["self", "read:groups", DATA]
    assert roles["server"]["scopes"] == ["users:activity!user", "access:servers!server", "read:users:name", DATA]
    assert roles["admin"] == {"name": "admin", "services": ["test-admin"]}
    assert "extra_user_scopes" not in c.JupyterHub  # the site's user role holds them: JupyterHub would ignore these


def test_a_site_role_without_scopes_starts_from_jupyterhubs():
    c = Config()
    c.JupyterHub.load_roles = [{"name": "user", "users": ["alice"]}, {"name": "server", "services": []}]
    add_service_roles(c, "daas-dask")
    roles = roles_by_name(c)
    assert roles["user"] == {"name": "user", "users": ["alice"], "scopes": ["self", DASK]}
    assert roles["server"]["scopes"] == [*SERVER_DEFAULT, DASK]


def test_roles_appended_to_a_fresh_config_are_kept():
    """`c.JupyterHub.load_roles.append(...)` on a fresh config is a traitlets LazyConfigValue, not a list."""
    c = Config()
    c.JupyterHub.load_roles.append({"name": "idle-culler", "services": ["idle-culler"], "scopes": ["list:users"]})
    if HAS_EXTRA_USER_SCOPES:
        c.JupyterHub.extra_user_scopes.add("read:groups")
    add_service_roles(c, "daas-data")
    roles = roles_by_name(c)
    assert roles["idle-culler"]["scopes"] == ["list:users"]
    assert "daas-data-service" in roles
    if HAS_EXTRA_USER_SCOPES:
        assert c.JupyterHub.extra_user_scopes == {"read:groups", DATA}


def test_calling_it_again_or_per_service_changes_nothing_twice():
    once, twice = Config(), Config()
    add_service_roles(once, "daas-data", "daas-dask")
    add_service_roles(twice, "daas-data")
    add_service_roles(twice, "daas-data", "daas-dask")
    assert roles_by_name(twice) == roles_by_name(once)
    assert user_scopes(twice) == user_scopes(once)


def test_the_sites_role_of_a_service_gains_the_scopes_too():
    c = Config()
    c.JupyterHub.load_roles = [{"name": "daas-data-service", "services": ["daas-data"], "scopes": ["list:groups"]}]
    add_service_roles(c, "daas-data")
    role = roles_by_name(c)["daas-data-service"]
    assert role == {
        "name": "daas-data-service",
        "services": ["daas-data"],
        "scopes": ["list:groups", "read:users", "read:servers", PROPOSALS_SCOPE],
    }


def test_the_sites_roles_are_not_changed_in_place():
    site = [{"name": "user", "scopes": ["self"]}]
    c = Config()
    c.JupyterHub.load_roles = site
    add_service_roles(c, "daas-data")
    assert roles_by_name(c)["user"]["scopes"] == ["self", DATA]
    assert site == [{"name": "user", "scopes": ["self"]}]
