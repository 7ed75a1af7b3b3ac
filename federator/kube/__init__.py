"""The I/O layer: the one choke point through which federator talks to the Kubernetes API."""
