"""manymodels: characterize serverless traces, synthesize edge inference workloads, simulate model caches."""

__version__ = "0.1.0"
