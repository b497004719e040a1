"""Provenance forensics: trace a suspect training set to the API outputs (and accounts) it came from."""

from .formats import DatasetFormatError, DatasetRecord, read_dataset
from .index import Output, OutputIndex
from .trace import Evidence, Match, trace, trace_records

__all__ = ["DatasetFormatError", "DatasetRecord", "Evidence", "Match", "Output", "OutputIndex",
           "read_dataset", "trace", "trace_records"]
