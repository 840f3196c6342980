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
#: The timeout rule: an upper confidence bound on this quantile of the durations (order statistics) ...
TIMEOUT_QUANTILE = 0.999
#: ... at this confidence. p99.9 at 95% needs 2,995 durations (``workbook.tuning.bounds.min_samples``).
TIMEOUT_BOUND_LEVEL = 0.95
#: With fewer durations, the reason shows a provisional figure from this lower quantile's bound ...
TIMEOUT_FALLBACK_QUANTILE = 0.99
#: ... with this larger headroom, in percent; it is never recommended (the row says insufficient-data).
TIMEOUT_FALLBACK_HEADROOM_PCT = 100.0
#: Two memory sizes whose cost (or duration, or balanced score) differs by less than this, in percent, are a tie.
TIE_MARGIN_PCT = 2.0
#: A memory decision needs this share of bootstrap resamples to say recommend or keep ...
DECISION_CONFIDENCE = 0.95
#: ... and this many warm invocations at the chosen and at the current size.
MIN_DECISION_SAMPLES = 5
#: A recommended size must be within this much of the best measured size (in percent), with the decision's
#: confidence: sizes that tie within the noise cannot be told apart, but none of them may be far off.
RECOMMEND_WORST_PCT = 10.0
#: Only recommendations at or above this confidence reach the summary's "Top recommendations" and the
#: params patch; the rest are listed under "Needs more data" (notebook parameter ``min_confidence``).
MIN_CONFIDENCE = 0.8
#: arm64 is recommended only when its p95 is at most this much slower than x86_64's, in percent.
MAX_ARM64_P95_SLOWDOWN_PCT = 10.0
