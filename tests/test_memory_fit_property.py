"""The fit property (issue 12): random conversations — user texts, replies, tool calls
with results of 0-60 KB, failed and interrupted model calls, rollbacks, pins, settings
changed midway, compactions that succeed, fail (API error), come back empty or too long,
or leave identifiers out (repaired) — never produce a request over the window, by leon's
own count or by the local API server's, nor one the Messages API would refuse.

Runs through leon's real Agent and ContextManager (tests/fit_rig.py). Derandomized with
a bounded number of examples, so CI is repeatable and quick; `python
bench/fit_property.py --examples 2000` is the bigger run."""

from __future__ import annotations

import asyncio

from fit_rig import HypothesisDraw, Stats, make_files, run_one
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EXAMPLES = 25


def test_no_request_ever_exceeds_the_window_or_is_invalid(tmp_path):
    workspace = make_files(tmp_path)
    total = Stats()

    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.data())
    def conversation(data):
        total.add(asyncio.run(run_one(HypothesisDraw(data), workspace)))

    conversation()
    # the runs did exercise what the property is about
    assert total.requests > 100 and total.compactions and total.fits
    assert total.compactions_failed and total.repaired and total.messages_dropped
    assert total.largest_ratio <= 1.0
    print(f"\n{total.conversations} conversations, {total.requests} requests: largest "
          f"{total.largest_ratio:.3f} of the window ({total.largest}); compactions "
          f"{total.compactions} ({total.repaired} repaired), {total.compactions_failed} "
          f"failed; {total.fits} fitted requests, {total.messages_dropped} messages left "
          f"out; {total.refused} sends refused")
