"""The operator: kopf handlers over the reconciler, which is a thin shell over the pure core."""
