"""certify: formally certified accuracy bounds for Max-of-K transformers via compact proofs."""

__version__ = "0.1.0"
