"""Workload fidelity: how closely a candidate workload behaves like a reference (by default the
replay of its source trace), at minute resolution and as cache outcomes. Never imports the
parametric generator: the measuring modules read workload files only."""
