"""Build the one C extension (no third-party C dependencies: a C compiler and Python's headers)."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("noriba_wire", ["noriba_wire.c", "gbfs_status.c"], depends=["utf8.h"], extra_compile_args=["-O2", "-std=c99", "-Wall"])], py_modules=[])
