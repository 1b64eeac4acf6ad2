"""Dask offload: clusters on Slurm, run as their owner, for notebooks on any backend.

In a notebook: `from daas_services.dask import DaskOffload`. The service is
`python -m daas_services.dask` (service.py); each cluster's scheduler (scheduler.py) and workers
are Slurm jobs the service submits as the cluster's owner.
"""

from .client import DaskOffload, OffloadCluster, OffloadError

__all__ = ["DaskOffload", "OffloadCluster", "OffloadError"]
