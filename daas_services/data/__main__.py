"""`python -m daas_services.data`: the `daas-data` command (see app.py), as the hub starts it."""

from .app import main

if __name__ == "__main__":
    main()
