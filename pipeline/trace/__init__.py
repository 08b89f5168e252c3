"""The Azure Functions 2019 trace: its schema, a calibrated synthetic twin, download and ingest."""
