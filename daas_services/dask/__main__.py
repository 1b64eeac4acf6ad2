"""`python -m daas_services.dask`: the `daas-dask` command (see app.py), as the hub starts it."""

from .app import main

if __name__ == "__main__":
    main()
