"""jupyterhub-daas services: data mounts and Dask offload (issues #5 and #6; not built yet)."""
