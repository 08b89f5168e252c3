"""Heavy-tail fits of per-function popularity: Zipf (rank-frequency), power law, lognormal.

- Zipf: least squares of log(invocations) on log(rank) over functions with invocations > 0, at
  ranks spaced evenly in log(rank) (`ZIPF_POINTS` of them), so every decade of rank weighs the
  same: on all ranks the many tail functions dominate the fit and its line at rank 1 lands two
  orders of magnitude above the data; exponent s, intercept (log invocations at rank 1), R^2.
- Power law: continuous MLE alpha = 1 + n / sum(ln(x / xmin)), xmin chosen by minimizing the
  Kolmogorov-Smirnov distance (Clauset, Shalizi, Newman 2009).
- Lognormal: MLE on all positive counts; and truncated at xmin for the tail comparison.
- Comparison on the tail x >= xmin: Vuong's normalized log-likelihood ratio R and its p-value;
  the winner is named when p < 0.1, else "inconclusive".
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, stats

ZIPF_POINTS = 60


def zipf_fit(invocations: np.ndarray) -> dict:
    x = np.sort(invocations[invocations > 0])[::-1].astype(float)
    if len(x) < 3 or x[0] == x[-1]:
        return {"exponent": None, "r2": None, "n": len(x)}
    rank = np.unique(np.geomspace(1, len(x), ZIPF_POINTS).round().astype(np.int64))
    slope, intercept, r, _, _ = stats.linregress(np.log(rank), np.log(x[rank - 1]))
    return {"exponent": float(-slope), "intercept": float(intercept), "r2": float(r * r), "n": len(x)}


def _ks_powerlaw(tail: np.ndarray, xmin: float, alpha: float) -> float:
    empirical = np.arange(1, len(tail) + 1) / len(tail)
    model = 1.0 - (tail / xmin) ** (1.0 - alpha)
    return float(np.max(np.abs(empirical - model)))


def powerlaw_fit(invocations: np.ndarray, candidates: int = 60) -> dict:
    x = np.sort(invocations[invocations > 0].astype(float))
    unique = np.unique(x)
    if len(unique) < 3:
        return {"alpha": None, "xmin": None, "ks": None, "n_tail": len(x)}
    choices = np.unique(np.quantile(unique[:-1], np.linspace(0.0, 0.95, candidates)))
    best = None
    for xmin in choices:
        tail = x[x >= xmin]
        logs = np.log(tail / xmin).sum()
        if len(tail) < 10 or logs <= 0:
            continue
        alpha = 1.0 + len(tail) / logs
        ks = _ks_powerlaw(tail, xmin, alpha)
        if best is None or ks < best["ks"]:
            best = {"alpha": float(alpha), "xmin": float(xmin), "ks": ks, "n_tail": len(tail)}
    return best or {"alpha": None, "xmin": None, "ks": None, "n_tail": len(x)}


def lognormal_fit(invocations: np.ndarray) -> dict:
    x = invocations[invocations > 0].astype(float)
    if len(x) < 2:
        return {"mu": None, "sigma": None, "ks": None, "n": len(x)}
    logs = np.log(x)
    mu, sigma = float(logs.mean()), float(logs.std())
    ks = float(stats.kstest(logs, "norm", args=(mu, sigma)).statistic) if sigma > 0 else None
    return {"mu": mu, "sigma": sigma, "ks": ks, "n": len(x)}


def _truncated_lognormal(tail: np.ndarray, xmin: float) -> tuple[float, float, np.ndarray]:
    logs = np.log(tail)

    def nll(params: np.ndarray) -> float:
        mu, log_sigma = params
        sigma = math.exp(log_sigma)
        survival = stats.norm.sf((math.log(xmin) - mu) / sigma)
        if survival <= 1e-300:
            return 1e300
        return -(stats.norm.logpdf(logs, mu, sigma) - logs).sum() + len(tail) * math.log(survival)

    start = np.array([logs.mean(), math.log(max(logs.std(), 1e-3))])
    result = optimize.minimize(nll, start, method="Nelder-Mead", options={"maxiter": 2000, "xatol": 1e-6, "fatol": 1e-8})
    mu, sigma = float(result.x[0]), float(math.exp(result.x[1]))
    survival = stats.norm.sf((math.log(xmin) - mu) / sigma)
    loglik = stats.norm.logpdf(logs, mu, sigma) - logs - math.log(survival)
    return mu, sigma, loglik


def compare_tail(invocations: np.ndarray, power: dict) -> dict:
    """Vuong test of lognormal vs power law on the power law's tail."""
    if power.get("alpha") is None:
        return {"winner": "inconclusive", "loglik_ratio": None, "p_value": None, "reason": "too few distinct values"}
    xmin, alpha = power["xmin"], power["alpha"]
    tail = invocations[invocations >= xmin].astype(float)
    pl_loglik = math.log(alpha - 1.0) - math.log(xmin) - alpha * np.log(tail / xmin)
    mu, sigma, ln_loglik = _truncated_lognormal(tail, xmin)
    diff = ln_loglik - pl_loglik
    total = float(diff.sum())
    spread = float(diff.std())
    if spread == 0:
        return {"winner": "inconclusive", "loglik_ratio": total, "p_value": None}
    normalized = total / (math.sqrt(len(tail)) * spread)
    p_value = float(2.0 * stats.norm.sf(abs(normalized)))
    winner = ("lognormal" if total > 0 else "power_law") if p_value < 0.1 else "inconclusive"
    return {"winner": winner, "loglik_ratio": total, "normalized_ratio": normalized, "p_value": p_value,
            "tail_lognormal_mu": mu, "tail_lognormal_sigma": sigma, "n_tail": len(tail)}


def popularity_fits(invocations: np.ndarray) -> dict:
    power = powerlaw_fit(invocations)
    return {"zipf": zipf_fit(invocations), "power_law": power, "lognormal": lognormal_fit(invocations),
            "tail_comparison": compare_tail(invocations, power)}
