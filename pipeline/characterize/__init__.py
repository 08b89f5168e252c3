"""Characterization of the trace in DuckDB: idleness, popularity, arrivals, resources."""
