"""Backends that start single-user servers; the contract is in base.py."""
