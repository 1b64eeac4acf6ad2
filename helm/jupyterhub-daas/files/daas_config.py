"""daas_config.py of the jupyterhub-daas chart: the services' settings and the shared account rules.

daas-data and daas-dask read it with --config, and the hub loads it (`load_subconfig`), so
`c.UserAccounts` is written once. The settings come from the chart's `daasConfig` value
({Class: {trait: value}}), kept beside this file as daas-config.json.
"""

import json
import os

c = get_config()  # noqa: F821 - provided by traitlets
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "daas-config.json")) as file:
    for section, traits in json.load(file).items():
        for trait, value in traits.items():
            c[section][trait] = value
