"""translator: Splunk ESCU detections to Sigma rules and SIEM queries, with parity checks."""

__version__ = "0.1.0"
