"""Sluice's native parts, built by the package's install (setup.py); each has a Python
path to fall back on."""
