"""The tuning defaults: one place for the power values and every default a tuning run starts from.

The notebooks' ``parameters`` cells, the ``workbook tune`` command, ``workbook run`` and the
library all take their defaults from here (a notebook parameter of ``None`` means "the default").
Lambda's own facts (memory limits, one vCPU = 1,769 MB) live in ``infra.specs``.
"""
from __future__ import annotations

from infra.specs import MB_PER_VCPU

#: Memory sizes measured by power tuning: the tool's usual spread, with one vCPU (1,769 MB) in place of
#: 1,536 MB, since the CPU share stops growing there for single-threaded code.
DEFAULT_POWER_VALUES: tuple[int, ...] = (128, 256, 512, 1024, MB_PER_VCPU, 3008)
#: Invocations per power value (a full sweep); adaptive tuning stops earlier when it is confident.
DEFAULT_NUM_INVOCATIONS = 10
#: Invocations per power value in a scheduled report (``workbook run``): a smaller budget.
REPORT_NUM_INVOCATIONS = 8
DEFAULT_STRATEGY = "cost"
DEFAULT_BALANCED_WEIGHT = 0.5
#: aws-lambda-power-tuning's ``discardTopBottom``: the share of sorted durations dropped at each end.
DEFAULT_DISCARD_TOP_BOTTOM = 0.2
#: Functions power-tuned by a report run (each costs invocations).
REPORT_TUNE_FUNCTIONS: tuple[str, ...] = ("file-processor",)
#: Memory kept above the peak Max Memory Used, in percent.
MEMORY_HEADROOM_PCT = 30.0
#: Headroom above the high duration quantile that sets a timeout, in percent.
TIMEOUT_HEADROOM_PCT = 50.0
#: The shortest timeout the workbook recommends, in seconds.
TIMEOUT_MIN_S = 3
#: A p99.9 from fewer invocations is really the maximum of a small sample: too thin to set a timeout on.
MIN_TIMEOUT_SAMPLES = 100
#: arm64 is recommended only when its p95 is at most this much slower than x86_64's, in percent.
MAX_ARM64_P95_SLOWDOWN_PCT = 10.0
