"""The timeout backtest: recommend from the first half of a window, count what the second half would have cut."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from infra import config
from workbook.tuning import backtest
from workbook.tuning.analysis import TuningInputError


def window(key: str, durations: np.ndarray, status: str = "ok") -> pd.DataFrame:
    start = pd.Timestamp("2026-11-27T00:00:00Z")
    return pd.DataFrame({"function": key, "timestamp": [start + pd.Timedelta(milliseconds=100 * i)
                                                        for i in range(len(durations))],
                         "duration_ms": durations, "status": status})


def test_a_bound_from_the_first_half_cuts_nothing_in_a_stationary_second_half():
    # GIVEN 8,000 lognormal durations of the data processor, the same distribution throughout
    rng = np.random.default_rng(11)
    data = window("data-processor", rng.lognormal(np.log(200), 0.7, 8000))
    result = backtest.timeout_backtest(config.load("local"), data, ["data-processor"]).iloc[0]
    # THEN the first half supports a recommendation, and no invocation of the second half runs past it
    assert result["status"] == "recommend" and result["first_window_samples"] == 4000
    assert result["cut"] == 0 and result["recommended_s"] < result["current_s"]
    # AND the bound alone, without the floors, cuts nothing either
    assert result["bound_only_s"] >= 1 and result["bound_only_cut"] == 0


def test_a_slowdown_in_the_second_half_is_counted():
    # GIVEN a second half where a dependency slowed down past anything the first half saw (and past the floor)
    settings = config.load("local")
    data = window("data-processor", np.concatenate([np.full(4000, 100.0), np.full(4000, 200_000.0)]))
    result = backtest.timeout_backtest(settings, data, ["data-processor"]).iloc[0]
    assert result["cut"] == 4000 and result["margin"] < 1


def test_thin_first_half_keeps_the_current_timeout():
    data = window("api-processor", np.full(500, 50.0))
    result = backtest.timeout_backtest(config.load("local"), data, ["api-processor", "scheduler"])
    assert list(result["status"]) == ["insufficient-data", "insufficient-data"]
    assert result["cut"].sum() == 0 and result.iloc[0]["recommended_s"] == 30


def test_no_data_and_a_bad_split():
    assert backtest.timeout_backtest(config.load("local"), pd.DataFrame(), ["api-processor"]).empty
    with pytest.raises(TuningInputError, match="split"):
        backtest.timeout_backtest(config.load("local"), window("api-processor", np.ones(3)), ["api-processor"], split=1.0)
