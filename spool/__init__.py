"""The spool: the record contract, its atomic writer and its exact reader (see contract.py)."""

from .contract import KINDS, LATE, REPEATED, SCHEMA_VERSION, TABLES, record
from .reader import BadSpoolFile, parse_spool_file, table_schemas
from .writer import SpoolWriter

__all__ = ["KINDS", "LATE", "REPEATED", "SCHEMA_VERSION", "TABLES", "record", "BadSpoolFile", "parse_spool_file",
           "table_schemas", "SpoolWriter"]
