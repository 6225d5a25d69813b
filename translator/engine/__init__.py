"""Engines that run rules on events: the Sigma evaluator (and later the SPL executor and parity)."""
