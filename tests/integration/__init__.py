"""Integration tests on the embedded control plane.

A package, so that test basenames may repeat those in tests/unit.
"""
