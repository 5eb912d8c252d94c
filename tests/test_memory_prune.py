"""Pruning rules, as pure functions: trim, clear, protect, pin, batch, stay stable."""

from __future__ import annotations

from dataclasses import replace

from leon.config import Settings
from leon.memory import prune as pr
from leon.memory.settings import MemorySettings

S = MemorySettings.of(Settings(), "claude-sonnet-4-6")


def lines(n: int, width: int = 40) -> str:
    return "\n".join(f"line {i:05d} " + "x" * (width - 11) for i in range(n))


def ref(tid: str, text: str, **kw) -> pr.ResultRef:
    return pr.ResultRef(tid, text, kw.pop("chars", len(text)), **kw)


def test_soft_trim_keeps_head_and_tail_with_a_marker_saying_how_much_was_cut():
    text = lines(200)  # 8,199 chars
    out = pr.variant(ref("a", text), S)
    assert out is not None and out.kind == "trim"
    assert out.text.startswith("line 00000") and out.text.rstrip().endswith(text[-20:])
    head, rest = out.text.split("[… ", 1)
    marker, tail = rest.split("…]\n", 1)
    cut = int(marker.split(" of ")[0].replace(",", ""))
    assert len(head) + cut + len(tail) == len(text)
    assert text.startswith(head) and text.endswith(tail)
    assert f"of {len(text):,} characters cut here" in marker
    assert len(out.text) < S.soft_trim_chars + 200
    assert "line 00100" not in out.text  # the middle is gone


def test_short_results_are_left_alone():
    assert pr.variant(ref("a", "x" * S.soft_trim_chars), S) is None


def test_hard_clear_names_size_and_spill_file():
    out = pr.variant(ref("a", "preview", chars=50_000, spill_path="/s/t/a.txt"), S)
    assert out is not None and out.kind == "clear"
    assert "50,000 characters" in out.text and "/s/t/a.txt" in out.text
    assert "read_file" in out.text and "grep" in out.text


def test_spilled_result_is_measured_by_its_full_output():
    # The stored preview is short, but the output was 12k chars: above the clear threshold.
    out = pr.variant(ref("a", "short preview", chars=12_000, spill_path="/p"), S)
    assert out is not None and out.kind == "clear"


def test_pruning_is_deterministic_and_idempotent():
    text = lines(300)
    a = pr.variant(ref("a", text), S)
    b = pr.variant(ref("a", text), S)
    assert a == b
    assert pr.variant(ref("a", a.text), S) is None  # pruned text is never pruned again
    cleared = pr.variant(ref("b", "p", chars=99_999, spill_path="/x"), S)
    assert pr.variant(ref("b", cleared.text, chars=len(cleared.text)), S) is None


def _messages(n: int, size: int = 8000, pinned: frozenset[int] = frozenset()):
    out = []
    for i in range(n):
        out.append(("assistant", [{"type": "tool_use", "id": f"t{i}", "name": "x",
                                   "input": {}}], False))
        out.append(("user", [{"type": "tool_result", "tool_use_id": f"t{i}",
                              "content": lines(size // 40)}], i in pinned))
    return out


def test_newest_results_are_protected_and_pinned_never_pruned():
    refs = pr.result_refs(_messages(6, pinned=frozenset({1})), {}, protect_recent=3)
    assert [r.protected for r in refs] == [False, False, False, True, True, True]
    plan = pr.plan(refs, set(), replace(S, min_prune_tokens=0), lambda r: pr.variant(r, S),
                   lambda r, v: 1000)
    assert sorted(plan.applied) == ["t0", "t2"]  # t1 pinned, t3-t5 protected


def test_protect_recent_setting_changes_how_many_are_untouched():
    for keep in (0, 2, 5):
        refs = pr.result_refs(_messages(6), {}, protect_recent=keep)
        plan = pr.plan(refs, set(), replace(S, min_prune_tokens=0), lambda r: pr.variant(r, S),
                       lambda r, v: 1000)
        assert len(plan.applied) == 6 - keep


def test_trim_tool_results_off_prunes_nothing():
    off = replace(S, trim_tool_results=False)
    refs = pr.result_refs(_messages(6), {}, protect_recent=0)
    assert all(pr.variant(r, off) is None for r in refs)


def test_new_pruning_waits_for_a_batch_worth_min_prune_tokens():
    s = replace(S, min_prune_tokens=2500)
    refs = pr.result_refs(_messages(5), {}, protect_recent=3)  # t0, t1 eligible
    plan = pr.plan(refs, set(), s, lambda r: pr.variant(r, s), lambda r, v: 1000)
    assert plan.applied == {} and plan.batch == {} and plan.pending == 2000
    refs = pr.result_refs(_messages(6), {}, protect_recent=3)  # t0, t1, t2 eligible
    plan = pr.plan(refs, set(), s, lambda r: pr.variant(r, s), lambda r, v: 1000)
    assert sorted(plan.batch) == ["t0", "t1", "t2"] and plan.freed == 3000
    # Next request: decided results stay pruned, identically; t3 alone waits.
    decided = set(plan.applied)
    refs = pr.result_refs(_messages(7), {}, protect_recent=3)
    later = pr.plan(refs, decided, s, lambda r: pr.variant(r, s), lambda r, v: 1000)
    assert later.batch == {} and sorted(later.applied) == ["t0", "t1", "t2"]
    assert all(later.applied[k] == plan.applied[k] for k in decided)
    # ... unless forced (the settings changed, so the prefix changes anyway)
    forced = pr.plan(refs, decided, s, lambda r: pr.variant(r, s), lambda r, v: 1000,
                     force=True)
    assert sorted(forced.applied) == ["t0", "t1", "t2", "t3"]


def test_soft_trim_chars_and_hard_clear_threshold_change_the_result():
    text = lines(200)  # 8000 chars
    small = replace(S, soft_trim_chars=1000)
    assert len(pr.variant(ref("a", text), small).text) < len(pr.variant(ref("a", text), S).text)
    low_clear = replace(S, hard_clear_threshold=5000)
    assert pr.variant(ref("a", text), low_clear).kind == "clear"
    assert pr.variant(ref("a", text), S).kind == "trim"


def test_apply_replaces_only_pruned_blocks_and_leaves_history_alone():
    content = [{"type": "tool_result", "tool_use_id": "a", "content": "long"},
               {"type": "tool_result", "tool_use_id": "b", "content": "keep"}]
    out = pr.apply(content, {"a": pr.Pruned("trim", "short", 4)})
    assert out[0]["content"] == "short" and out[1] is content[1]
    assert content[0]["content"] == "long"
