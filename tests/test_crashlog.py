"""An unexpected error shows one line and leaves details in a private log without secrets."""

from __future__ import annotations

import os
import stat

from leon import crashlog


def test_one_line_logs_traceback_privately_without_the_key(leon_paths, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret-123456")
    try:
        raise RuntimeError("boom with sk-ant-secret-123456 inside")
    except RuntimeError as exc:
        line = crashlog.one_line(exc)
    assert "\n" not in line and "RuntimeError" in line and "leon.log" in line
    assert "sk-ant-secret" not in line
    log = leon_paths.home / "leon.log"
    text = log.read_text()
    assert "Traceback" in text and "sk-ant-secret" not in text and "[redacted]" in text
    assert stat.S_IMODE(os.stat(log).st_mode) == 0o600
