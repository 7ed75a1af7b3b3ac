"""Federator: compile one streaming Application into the CRs of the operators you already run."""

__version__ = "0.1.0"
