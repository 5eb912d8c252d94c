"""Spill: large tool output goes to a private file; the model gets a preview, the size,
the path and a hint, and can follow the pointer even after pruning cleared the result."""

from __future__ import annotations

import stat

from fakeapi import text, tool_use
from memory_helpers import make_agent, recording_agent

from leon.agent import events as ev
from leon.config import Settings
from leon.memory import spill as sp


def big_file(ws, name="big.log", lines=2000):
    body = "\n".join(f"{i:05d} event id=evt-{i:05d} status=ok" for i in range(lines)) + "\n"
    (ws / name).write_text(body)
    return body


async def test_large_output_is_spilled_to_a_private_file_with_a_preview(stores, tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    body = big_file(ws)
    agent, rec = await recording_agent(stores, ws, spill_root=tmp_path / "spill")
    seen: list[ev.AgentEvent] = []
    agent.subscribe(seen.append)
    await agent.send("read big.log")
    stored = agent.branch[2].content[0]["content"]
    spills = await stores.leon.spills(agent.thread.id)
    assert len(spills) == 1
    rec_ = spills[0]
    path = tmp_path / "spill" / agent.thread.id / rec_.path.rsplit("/", 1)[-1]
    assert str(path) == rec_.path and path.exists()
    full = path.read_text()
    assert "00000 event id=evt-00000" in full and "01999 event id=evt-01999" in full
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    # the model sees a preview: head, tail, the full size, the path and how to read it
    assert len(stored) < 3000
    assert "00000 event" in stored and "01999 event" in stored
    assert f"{rec_.chars:,} characters" in stored and rec_.path in stored
    assert "read_file (offset/limit)" in stored and "grep" in stored
    assert rec_.bytes == len(full.encode()) and rec_.lines == 2000
    assert rec_.message_id == agent.branch[2].id  # linked once stored
    # an event delivered as it happened, and stored
    spilled = [e for e in seen if isinstance(e, ev.MemoryEvent) and e.event == "spill"]
    assert spilled and spilled[0].data["path"] == rec_.path
    assert [e.kind for e in await stores.leon.events(agent.thread.id, kinds=["spill"])] == \
        ["spill"]
    assert len(body) > 10_000


async def test_spill_threshold_key(stores, tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    big_file(ws, lines=300)  # ~12,000 chars of numbered output
    agent, _ = await recording_agent(stores, ws, spill_root=tmp_path / "spill", settings={
        "memory.pruning.hard_clear_threshold": 50_000,
        "memory.spill.threshold_chars": 40_000})
    await agent.send("read big.log")
    assert await stores.leon.spills(agent.thread.id) == []
    agent.settings.set("memory.spill.threshold_chars", 5_000)
    await agent.send("read big.log")
    assert len(await stores.leon.spills(agent.thread.id)) == 1


async def test_spill_and_prune_leave_a_pointer_the_model_can_follow(stores, fake_api, tmp_path):
    """Through the real SDK: a spilled output, once pruned, is a placeholder naming the
    file; the model reads the file back with read_file (offset/limit)."""
    ws = tmp_path / "ws"
    ws.mkdir()
    big_file(ws)
    settings = Settings({"memory.pruning.protect_recent": 0,
                         "memory.pruning.min_prune_tokens": 0})
    agent = await make_agent(stores, fake_api, ws, settings=settings,
                             spill_root=tmp_path / "spill")
    fake_api.script(tool_use("read_file", {"path": "big.log"}), text("It is a long log."))
    await agent.send("read big.log")
    path = (await stores.leon.spills(agent.thread.id))[0].path
    fake_api.script(tool_use("read_file", {"path": path, "offset": 1500, "limit": 3}),
                    text("Line 1500 is evt-01499."))
    await agent.send("what is on line 1500?")
    requests = fake_api.message_requests()
    # the first result is cleared in the request (never in the database) ...
    placeholder = requests[2]["body"]["messages"][2]["content"][0]["content"]
    assert placeholder.startswith("[tool output cleared")
    assert path in placeholder and "read_file" in placeholder
    assert "01999 event" in agent.branch[2].content[0]["content"]  # stored preview intact
    # ... and the model followed it: read_file on the spill file worked
    followed = requests[3]["body"]["messages"][-1]["content"][0]
    assert not followed.get("is_error"), followed
    assert "01499 event id=evt-01499" in str(followed["content"])


async def test_a_result_stored_whole_is_spilled_when_it_must_be_cleared(stores, tmp_path):
    """Thresholds lowered after a large result was stored: clearing it spills it first,
    so the placeholder still points at the full output."""
    ws = tmp_path / "ws"
    ws.mkdir()
    body = big_file(ws, lines=500)  # ~20,000 chars
    agent, rec = await recording_agent(stores, ws, spill_root=tmp_path / "spill", settings={
        "memory.pruning.hard_clear_threshold": 50_000,
        "memory.spill.threshold_chars": 40_000, "memory.pruning.protect_recent": 0,
        "memory.pruning.min_prune_tokens": 0})
    await agent.send("read big.log")
    assert await stores.leon.spills(agent.thread.id) == []
    agent.settings.set("memory.spill.threshold_chars", 8_000)
    agent.settings.set("memory.pruning.hard_clear_threshold", 8_000)
    await agent.send("hello")
    spills = await stores.leon.spills(agent.thread.id)
    assert len(spills) == 1 and spills[0].message_id == agent.branch[2].id
    sent = rec.turn_requests[-1].messages[2]["content"][0]["content"]
    assert sent.startswith("[tool output cleared") and spills[0].path in sent
    assert (tmp_path / "spill" / agent.thread.id).exists()
    assert open(spills[0].path).read() == agent.branch[2].content[0]["content"]
    assert len(body) > 8_000


def test_preview_is_deterministic_and_names_size_and_path():
    out = "\n".join(f"line {i}" for i in range(5000))
    a = sp.preview(out, "/x/y.txt")
    assert a == sp.preview(out, "/x/y.txt")
    assert "line 0" in a and "line 4999" in a and "/x/y.txt" in a
    assert f"{len(out):,} characters" in a and "5,000 lines" in a
    assert sp.spill_name("toolu_../../etc") == "toolu_.._.._etc.txt"
