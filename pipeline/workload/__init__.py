"""Synthetic edge workloads: a model population bound to catalog profiles plus a request stream."""
