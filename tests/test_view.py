"""Every request leon builds from stored history is valid for the Messages API, even
when history holds interrupted replies, failed turns and unanswered tool calls."""

from __future__ import annotations

import random

from leon.memory.view import MISSING_RESULT, SUMMARY_PREFIX, api_messages, validate


def user(t):
    return {"role": "user", "content": [{"type": "text", "text": t}]}


def asst(t="", *tool_ids):
    blocks = [{"type": "text", "text": t}] if t is not None else []
    blocks += [{"type": "tool_use", "id": i, "name": "grep", "input": {}} for i in tool_ids]
    return {"role": "assistant", "content": blocks}


def results(*ids):
    return {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": i, "content": "out"} for i in ids]}


def test_failed_turn_leaves_two_user_messages_which_are_merged():
    msgs = api_messages([user("first"), user("second")])
    assert validate(msgs) == []
    assert [b["text"] for b in msgs[0]["content"]] == ["first", "second"]


def test_interrupted_tool_call_gets_a_synthetic_result_before_the_next_text():
    msgs = api_messages([user("q"), asst("let me look", "t1", "t2"), user("never mind")])
    assert validate(msgs) == []
    first = msgs[2]["content"]
    assert [b.get("tool_use_id") for b in first[:2]] == ["t1", "t2"]
    assert first[0]["content"] == MISSING_RESULT and first[0]["is_error"]
    assert first[2]["text"] == "never mind"


def test_empty_partial_reply_and_empty_text_blocks_are_dropped():
    msgs = api_messages([user("q"), asst(""), user("again"), asst("  "), user("x")])
    assert validate(msgs) == []
    assert len(msgs) == 1


def test_results_out_of_order_or_stray_are_fixed():
    msgs = api_messages([user("q"), asst("a", "t1", "t2"), results("t2", "bogus", "t1")])
    assert validate(msgs) == []
    assert [b["tool_use_id"] for b in msgs[2]["content"]] == ["t1", "t2"]


def test_summary_comes_first_and_merges_with_a_following_user_turn():
    msgs = api_messages([user("next question")], summary="we decided X")
    assert validate(msgs) == []
    assert msgs[0]["content"][0]["text"].startswith(SUMMARY_PREFIX)
    assert msgs[0]["content"][1]["text"] == "next question"


def test_history_starting_with_assistant_gets_a_user_turn_first():
    msgs = api_messages([asst("hello"), user("hi")])
    assert validate(msgs) == []
    assert msgs[0]["role"] == "user"


def test_view_never_changes_the_stored_messages():
    stored = [user("q"), asst("a", "t1"), user("x")]
    snapshot = repr(stored)
    api_messages(stored)
    assert repr(stored) == snapshot


def test_random_histories_always_give_valid_requests():
    rng = random.Random(7)
    for _ in range(500):
        hist, n = [], 0
        for _ in range(rng.randint(1, 12)):
            r = rng.random()
            if r < 0.35:
                hist.append(user(rng.choice(["q", "", " "])))
            elif r < 0.7:
                ids = [f"t{n + k}" for k in range(rng.randint(0, 2))]
                n += len(ids)
                hist.append(asst(rng.choice(["a", "", None]), *ids))
            else:
                pool = [f"t{k}" for k in range(n + 1)]
                hist.append(results(*rng.sample(pool, min(len(pool), rng.randint(0, 2)))))
        msgs = api_messages(hist, summary=rng.choice([None, "s"]))
        if msgs:
            assert validate(msgs) == [], (hist, msgs)
