"""The pieces of bench/run.py: see bench/README.md for the method."""
