"""The Lean export: the Python mirror of the Lean checker, and certificate rendering and parsing."""
