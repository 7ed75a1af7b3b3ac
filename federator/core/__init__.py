"""The pure core: model, validation, topology, naming, render, health, plan.

Nothing here imports kopf, kubernetes or the shell, reads the environment or the clock, or talks
to the network; everything is a function of its arguments (and of the package's own data files:
the CRD and the templates, which are code). The import-linter contract in pyproject.toml keeps
it so.
"""
