"""Keep-alive with pre-warming: `hybrid-histogram` (Shahrad et al., "Serverless in the Wild", ATC'20)
and `forecast-prewarm` (forecast-driven provisioning as in Barista, IC2E'19).

Both keep per-model timers that the event loop runs (`engine._ka_*`); what the policy object holds
is only their eviction order under memory pressure: least recently used first among the evictable
residents (loaded, no queued or running work), as `ttl` and `lru` do. The rules, per model:

- Idle time (IT): from the moment the model has no queued or running request (its last completion)
  to its next request. Every IT is a sample (whether or not the model stayed loaded).
- `hybrid-histogram`: the ITs go into a histogram of 1-minute bins over 4 hours (`bin_min`,
  `range_min`); an IT beyond the range is counted out of bounds (OOB). After each completion:
  1. at least `min_samples` (5) ITs and more than `oob_share` (50%) of them OOB: the forecaster's
     window (below; the paper uses ARIMA here);
  2. else, at least `min_samples` ITs in range and the coefficient of variation of the 240 bin counts
     above `cv` (2; the paper's test of a concentrated, i.e. representative, histogram: ITs spread
     evenly over k bins give CV = sqrt(240 / k - 1), so CV > 2 means under about 48 bins):
     head = lower edge of the bin holding the `head_pct` (5th) percentile, tail = upper edge of the
     bin holding the `tail_pct` (99th); pre-warm at head x (1 - `margin`), keep alive until tail x
     (1 + `margin`), margin 10% as the paper;
  3. else a fixed keep-alive of `ttl_min` minutes (no pre-warm).
- `forecast-prewarm`: from `fc_min_samples` (2) ITs on, always the forecaster's window; before, the
  fixed keep-alive.
- Forecaster: an exponentially weighted mean mu and mean absolute deviation d of the model's ITs
  (gains 1/8 and 1/4, as TCP's round-trip-time estimator; the first IT x gives mu = x, d = x / 2);
  pre-warm at max(mu - `fc_devs` d, 0) x (1 - `fc_margin`), keep alive until (mu + `fc_devs` d) x
  (1 + `fc_margin`) but at least one histogram bin (1 minute, the hybrid policy's resolution), with 4
  deviations (as TCP's retransmission timeout, srtt + 4 rttvar) and the paper's 15% ARIMA margin.
  (With 2 deviations, Poisson-like models were kept about 3 mean idle times: on the default replay
  workload a third of the requests then waited for a load.)
- A window with pre-warm > 0 unloads the model right after its completion and loads it again (a
  pre-warm, without a request) at the pre-warm time; it then stays until the keep-alive end
  (measured from the completion) unless a request comes. Pre-warm 0: the model stays loaded until
  the keep-alive end. A request cancels the model's timer.
- A pre-warm loads only into free memory, and only when no request waits for memory: it never
  evicts (skipped otherwise, counted as `prewarms_skipped`). A request-driven load evicts the least
  recently used evictable residents, as LRU.
- Counted: `prewarm_loads`; `wasted_prewarms`, pre-warmed models unloaded (keep-alive end) or evicted
  before any request used them. Pre-warm loads count in loads, bytes loaded, load time and memory.
- Timers stop at the last arrival (what is resident then stays until the run's end, as for `ttl`).
"""

from .base import register
from .lru import LRU


@register("hybrid-histogram")
class HybridHistogram(LRU):
    """Eviction order of the hybrid histogram policy: LRU (the timers are the event loop's)."""


@register("forecast-prewarm")
class ForecastPrewarm(LRU):
    """Eviction order of forecast-driven pre-warming: LRU (the timers are the event loop's)."""
