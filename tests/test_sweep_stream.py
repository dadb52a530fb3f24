"""A local sweep job's output streamed with its prefix (sweeps/stream.py)."""

from __future__ import annotations

import io

from sweeps.stream import stream


def test_lines_are_echoed_with_the_prefix_and_a_redrawn_bar_at_most_every_interval():
    bar = "".join(f"\r 40%|####      | {i}/8 [00:0{i}<00:10]" for i in range(1, 6))
    raw = ("resuming from run/checkpoint-2\n" + bar + "\nGRPO step 3: generating 16 completions\npartial").encode()
    log, echoed = io.StringIO(), []
    stream(io.BytesIO(raw), log, echoed.append, "[1/2 a]", bar_every=3600)
    assert log.getvalue() == raw.decode()  # everything reaches job.log, bars included
    assert echoed[0] == "[1/2 a] resuming from run/checkpoint-2"
    bars = [e for e in echoed if "|" in e]
    assert len(bars) == 1 and bars[0].endswith("1/8 [00:01<00:10]")  # the redraws within the interval are not echoed
    assert echoed[-2:] == ["[1/2 a] GRPO step 3: generating 16 completions", "[1/2 a] partial"]
