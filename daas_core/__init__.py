"""The layer every DaaS package shares: proposals, data mounts, quantities, commands, accounts, site files.

It imports none of daas_auth, daas_spawner, daas_services or daas_hub (the import contract in
pyproject.toml checks it), and nothing of JupyterHub.
"""
