"""Content loading: detections, macros and data sources of an ESCU tree."""

from translator.content.loader import (
    Content,
    DataSource,
    Detection,
    find_content_root,
    iter_detection_files,
    load_content,
    load_detection,
)

__all__ = [
    "Content",
    "DataSource",
    "Detection",
    "find_content_root",
    "iter_detection_files",
    "load_content",
    "load_detection",
]
