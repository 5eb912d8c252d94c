"""The incremental view (:class:`leon.memory.view.Assembler`): reusing the previous
request's messages gives exactly what building from scratch gives."""

from __future__ import annotations

import copy
import random

from test_view import asst, results, user

from leon.memory.view import Assembler, api_messages, validate


def _random_message(rng, n):
    r = rng.random()
    if r < 0.35:
        return user(rng.choice(["q", "", " ", "next"])), n
    if r < 0.7:
        ids = [f"t{n + k}" for k in range(rng.randint(0, 2))]
        return asst(rng.choice(["a", "", None]), *ids), n + len(ids)
    pool = [f"t{k}" for k in range(n + 1)]
    return results(*rng.sample(pool, min(len(pool), rng.randint(0, 2)))), n


def test_incremental_build_equals_a_fresh_build():
    rng = random.Random(11)
    for _ in range(300):
        asm = Assembler()
        items: list = []
        n = 0
        summary = rng.choice([None, "s"])
        for step in range(rng.randint(1, 25)):
            action = rng.random()
            if action < 0.7 or not items:  # the thread grows
                msg, n = _random_message(rng, n)
                items.append((len(items) + 1000 * step, msg))
            elif action < 0.85:  # a rollback: the branch is cut and grows differently
                del items[rng.randrange(len(items)):]
            elif action < 0.95:  # an old message changes (pruning): new identity
                i = rng.randrange(len(items))
                items[i] = (("changed", step, i), copy.deepcopy(items[i][1]))
            else:  # a compaction: a new summary
                summary = f"summary {step}"
            snapshot = repr(items)
            got = asm.build(list(items), summary=summary)
            want = api_messages([m for _, m in items], summary=summary)
            assert got == want, (items, summary)
            assert repr(items) == snapshot  # history never changes
            if got:
                assert validate(got) == validate(got, start=asm.fresh)
                assert validate(got) == []
            synthesized = sum(1 for m in got for b in m["content"]
                              if b.get("content") == "(no result: the tool call was "
                              "interrupted before it finished)" or b.get("text") == "(continuing)")
            assert asm.repairs == synthesized


def test_results_of_earlier_builds_are_not_changed_by_later_ones():
    asm = Assembler()
    items = [(1, user("q")), (2, asst("a", "t1"))]
    first = asm.build(items)
    frozen = copy.deepcopy(first)
    items += [(3, results("t1")), (4, asst("done")), (5, user("more"))]
    asm.build(items)
    assert first == frozen
