"""The `federator` command line: thin argparse layers over the core and the shell."""
