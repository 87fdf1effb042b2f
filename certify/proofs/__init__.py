"""Proofs: exact path tables, sound arithmetic, and the proof strategies (one module per family)."""
