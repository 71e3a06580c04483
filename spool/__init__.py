"""The spool: the record contract, its atomic writer and its exact reader (see contract.py)."""

from .contract import (
    FILE_KINDS,
    KINDS,
    LATE,
    MODEL_KINDS,
    REPEATED,
    SCHEMA_VERSION,
    TABLES,
    file_kind,
    record,
)
from .reader import BadSpoolFile, parse_spool_file, table_schemas
from .writer import SpoolWriter

__all__ = ["FILE_KINDS", "KINDS", "LATE", "MODEL_KINDS", "file_kind", "REPEATED", "SCHEMA_VERSION", "TABLES", "record", "BadSpoolFile", "parse_spool_file",
           "table_schemas", "SpoolWriter"]
