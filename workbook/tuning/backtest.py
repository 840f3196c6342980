"""Backtest of the timeout rule: recommend from the first part of a window, count what the second would have cut.

Each function's REPORT rows are split in time at the moment when ``split`` of its invocations
had happened (its own midpoint by default: functions invoked on different schedules each get two
halves of their own traffic). The timeout rule (``workbook.tuning.rules.recommend_timeout``, with the same floors as the
recommendations) runs on the first part; every invocation of the second part that ran longer
than the timeout it gives would have been cut. Where the first part is too thin for the rule,
the timeout stays the current one, and the count shows what the current timeout cut.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from infra import config
from workbook.tuning.analysis import TuningInputError
from workbook.tuning.defaults import TIMEOUT_HEADROOM_PCT
from workbook.tuning.floors import timeout_floor
from workbook.tuning.rules import recommend_timeout

__all__ = ["BACKTEST_COLUMNS", "timeout_backtest"]

BACKTEST_COLUMNS = ["function", "first_window_samples", "status", "current_s", "recommended_s", "second_window_samples",
                    "second_window_max_ms", "cut", "margin", "bound_only_s", "bound_only_cut"]


def timeout_backtest(settings: config.Settings, reports: pd.DataFrame, keys: Sequence[str],
                     split: float = 0.5) -> pd.DataFrame:
    """One row per function: the rule's timeout from the first part, and how many invocations of the second it cuts.

    ``margin`` is the recommended timeout over the second part's longest invocation (how close it came).
    ``bound_only_s`` and ``bound_only_cut`` test the bound alone: its timeout without any floor
    (the bound plus headroom, rounded up to seconds), where the first part is large enough for one.
    """
    if not 0.0 < split < 1.0:
        raise TuningInputError(f"split {split!r} must be strictly between 0 and 1 (the share of the window before the cut)")
    rows = []
    if reports is None or not len(reports) or "timestamp" not in reports:
        return pd.DataFrame(columns=BACKTEST_COLUMNS)
    for key in keys:
        subset = reports[reports["function"] == key].sort_values("timestamp", kind="stable")
        status = subset["status"].astype(str) if "status" in subset else pd.Series("ok", index=subset.index)
        cut = int(len(subset) * split)
        first, second = subset.iloc[:cut], subset.iloc[cut:]
        first_ok = first.loc[status.loc[first.index] == "ok", "duration_ms"].dropna().astype(float).to_numpy()
        second_all = second["duration_ms"].dropna().astype(float).to_numpy()
        p99 = float(np.quantile(first_ok, 0.99)) if len(first_ok) else None
        floor = timeout_floor(settings, key, per_record_p99_ms=p99)
        rec = recommend_timeout(first_ok, key, settings=settings, floor=floor,
                                timed_out=int((status.loc[first.index] == "timeout").sum()))
        limit_ms = rec.timeout_s * 1000.0
        longest = float(second_all.max()) if len(second_all) else float("nan")
        bound_only = (math.ceil(rec.bound.bound_ms * (1 + TIMEOUT_HEADROOM_PCT / 100.0) / 1000.0 - 1e-9)
                      if rec.bound.exists else None)
        rows.append({"function": key, "first_window_samples": int(len(first_ok)), "status": rec.status.value,
                     "current_s": rec.current_s, "recommended_s": rec.timeout_s,
                     "second_window_samples": int(len(second_all)), "second_window_max_ms": round(longest, 1),
                     "cut": int((second_all > limit_ms).sum()),
                     "margin": round(limit_ms / longest, 1) if len(second_all) and longest > 0 else float("nan"),
                     "bound_only_s": bound_only,
                     "bound_only_cut": int((second_all > bound_only * 1000.0).sum()) if bound_only else None})
    return pd.DataFrame(rows, columns=BACKTEST_COLUMNS)
