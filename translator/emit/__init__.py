"""Emission: pySigma backends as targets, and output writing."""
