"""jupyterhub-daas services: per-proposal data (`data`) and Dask offload to Slurm (`dask`), run by the hub."""
