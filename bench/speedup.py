"""The analytic speedup now lives in the package (:mod:`horq_codegen.speedup`, with its derivation and
doctest); this name stays for the bench scripts that import it from here."""
from horq_codegen.speedup import analytic_speedup

__all__ = ["analytic_speedup"]
