"""SPL AST -> Sigma: logsource inference, field mapping, detection, metadata."""
