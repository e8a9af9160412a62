"""The one compiled part: textvec's default word analyzer (textvec/_fastvec.c).

Everything else about the package is in pyproject.toml. The extension is optional: where no C compiler
is found the install goes on and textvec uses its pure-Python path (same numbers, slower); the sidecar
image checks that it was built, and tests/training/test_fastvec.py fails where it was not."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "textvec._fastvec",
            sources=["textvec/_fastvec.c"],
            extra_compile_args=["-O2", "-std=c11"],
            optional=True,
        )
    ]
)
