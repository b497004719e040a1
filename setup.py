"""The one thing pyproject.toml cannot declare without an experimental table: the compiled loops of the detector's
feature extraction (detect/_speedups.pyx). Optional: without a C compiler the install still succeeds and
detect/speedups.py falls back to the pure-Python code."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("distillguard.detect._speedups", ["src/distillguard/detect/_speedups.pyx"],
                             optional=True)])
