"""Packaging shim: the metadata lives in pyproject.toml (PEP 621); this file lets older tools install."""

from setuptools import setup

setup()
