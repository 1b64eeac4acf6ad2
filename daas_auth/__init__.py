"""jupyterhub-daas authentication: OIDC login and experiment proposals (issue #4; not built yet)."""
