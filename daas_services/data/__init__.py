"""Per-proposal data: the mount model every backend uses (mounts.py), and the `daas-data` service.

Kept empty on purpose: the service's reader runs as a fresh process per request
(`python -m daas_services.data.reader`), and this package's import must cost it nothing.
"""
