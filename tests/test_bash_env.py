"""Commands get an environment built from an allowlist: whatever else leon's own
environment holds (passwords, tokens, database URLs, exported shell functions) stays out
unless the user names it in `tools.bash_env_pass`."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from fakeapi import text, tool_use
from toolrig import call, make_agent, result_text, results_of

from leon.agent.tools.bash import FORCED_ENV, command_env
from leon.config import ConfigError, Settings

# Names a denylist of "secret-looking" patterns missed, plain secrets, and innocuous
# variables: none is on the allowlist, so none may reach a command.
NOT_PASSED = {
    "ANTHROPIC_API_KEY": "sk-ant-api03-leak", "ANTHROPIC_BASE_URL": "http://leak.invalid",
    "ANTHROPIC_AUTH_TOKEN": "leak-auth", "PGPASSWORD": "pg-leak", "MYSQL_PWD": "mysql-leak",
    "DB_PASS": "db-leak", "GH_PAT": "ghp_leak", "STRIPE_KEY": "sk_live_leak",
    "ENCRYPTION_KEY": "enc-leak", "JWT_SIGNING_KEY": "jwt-leak",
    "SENTRY_DSN": "https://abc@sentry.invalid/1",
    "DATABASE_URL": "postgres://app:hunter2@db.invalid/app", "REDIS_URL": "redis://:pw@r/0",
    "AWS_ACCESS_KEY_ID": "AKIALEAK", "AWS_SECRET_ACCESS_KEY": "aws-leak",
    "AWS_SESSION_TOKEN": "aws-session-leak", "GITHUB_TOKEN": "ghs_leak", "GH_TOKEN": "gh-leak",
    "NPM_TOKEN": "npm-leak", "OPENAI_API_KEY": "sk-openai-leak", "SLACK_WEBHOOK": "hooks-leak",
    "TWILIO_AUTH": "twilio-leak", "DOCKER_AUTH_CONFIG": "docker-leak", "VAULT_ADDR": "vault",
    "KUBECONFIG": "/k/config", "GOOGLE_APPLICATION_CREDENTIALS": "/g/creds.json",
    "AZURE_CLIENT_SECRET": "azure-leak", "HF_HUB_TOKEN": "hf-leak", "PASSPHRASE": "pp-leak",
    "SSH_AUTH_SOCK": "/tmp/ssh-agent.sock", "GPG_AGENT_INFO": "/gpg",
    "HARMLESS_SETTING": "innocuous", "EDITOR": "vim", "XDG_CONFIG_HOME": "/x/config",
    "PYTHONPATH": "/py/path", "LD_PRELOAD": "/evil.so", "BASH_ENV": "/tmp/evil-bashenv",
    "ENV": "/tmp/evil-env", "SHELLOPTS": "xtrace", "BASHOPTS": "extglob", "IFS": "x",
    "PROMPT_COMMAND": "touch pwned", "CDPATH": "/tmp", "GLOBIGNORE": "*",
}
# Each value unique, so finding it anywhere in the output means it leaked.
NOT_PASSED = {name: f"{value}~{name.lower()}" for name, value in NOT_PASSED.items()}


@pytest.fixture
def ws(tmp_path):
    w = tmp_path / "ws"
    w.mkdir()
    return w


def _env_lines(content: str) -> dict[str, str]:
    out = {}
    for line in content.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.replace("_", "").isalnum():
            out[name] = value
    return out


async def test_env_through_the_real_bash_tool_has_only_the_allowlist(
        stores, leon_paths, ws, monkeypatch):
    for name, value in NOT_PASSED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MY_TOOL_HOME", "/opt/my-tool")
    monkeypatch.setenv("LC_TIME", "C")
    monkeypatch.setenv("TZ", "Europe/Paris")
    settings = Settings({"tools.bash_env_pass": ["MY_TOOL_HOME", "NOT_SET_ANYWHERE"]})
    agent = await make_agent(stores, leon_paths, ws, settings=settings)
    r = await call(agent, "bash", command="env")
    assert not r.is_error, r.content
    env = _env_lines(r.content)
    for name, value in NOT_PASSED.items():
        assert name not in env, name
        assert value not in r.content, name
    assert env["MY_TOOL_HOME"] == "/opt/my-tool"          # listed: passed
    assert "NOT_SET_ANYWHERE" not in env                  # listed but unset: absent
    assert env["LC_TIME"] == "C" and env["TZ"] == "Europe/Paris"
    assert env["HOME"] == os.environ["HOME"] and env["PATH"]
    assert env["LEON_WORKSPACE"] == str(ws)
    assert env["LEON_SANDBOX"] == str(leon_paths.sandboxes / agent.thread.id)
    assert env["LEON_THREAD"] == agent.thread.id
    assert env["TERM"] == "dumb" and env["PAGER"] == "cat"
    allowed = {"PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TMPDIR", "SHELL", "TZ",
               "MY_TOOL_HOME", "LEON_WORKSPACE", "LEON_SANDBOX", "LEON_THREAD", "PWD",
               *FORCED_ENV}
    # What bash itself adds to every environment it exports.
    bash_own = {"SHLVL", "_", "OLDPWD"}
    extra = {n for n in env if n not in allowed | bash_own and not n.startswith("LC_")}
    assert extra == set(), extra
    await agent.close()


async def test_an_exported_function_cannot_replace_an_allowed_command(
        stores, leon_paths, ws, monkeypatch):
    # With leon's environment passed through, `ls` would be this function: a rule allowing
    # `ls*` would then run anything. The allowlist keeps it out.
    monkeypatch.setenv("BASH_FUNC_ls%%", "() {  echo hijacked; }")
    probe = subprocess.run(["/bin/bash", "-c", "ls /"], capture_output=True, text=True,
                           env=dict(os.environ), timeout=30)
    assert probe.stdout.strip() == "hijacked"  # the attack is real without the allowlist
    agent = await make_agent(stores, leon_paths, ws,
                             settings=Settings({"permissions.allow": ["bash:ls*"]}))
    r = await call(agent, "bash", command="ls /")
    assert "hijacked" not in r.content and "usr" in r.content
    await agent.close()


def test_relative_path_entries_are_dropped():
    env = command_env(base={"PATH": ".:/usr/bin::bin:/bin:", "HOME": "/h"})
    assert env["PATH"] == "/usr/bin:/bin"
    assert command_env(base={"PATH": "."})["PATH"] == os.defpath


def test_anthropic_names_never_pass_even_if_listed():
    base = {"ANTHROPIC_API_KEY": "k", "anthropic_api_key": "k", "FOO": "f"}
    env = command_env(base=base, passed=["ANTHROPIC_API_KEY", "anthropic_api_key", "FOO"])
    assert "ANTHROPIC_API_KEY" not in env and "anthropic_api_key" not in env
    assert env["FOO"] == "f"


@pytest.mark.parametrize("names, fragment", [
    (["ANTHROPIC_API_KEY"], "never passed"),
    (["Anthropic_Base_Url"], "never passed"),
    (["AWS_*"], "not patterns"),
    (["FOO BAR"], "not patterns"),
    (["BASH_FUNC_ls%%"], "not patterns"),
    ([""], "not patterns"),
    (["1ABC"], "not patterns"),
    (["BASH_ENV"], "changes what bash runs"),
    (["SHELLOPTS"], "changes what bash runs"),
])
def test_bash_env_pass_is_validated(names, fragment):
    with pytest.raises(ConfigError) as exc:
        Settings({"tools.bash_env_pass": names})
    assert fragment in str(exc.value) and "tools.bash_env_pass" in str(exc.value)
    settings = Settings()
    with pytest.raises(ConfigError):
        settings.set("tools.bash_env_pass", names)
    assert settings["tools.bash_env_pass"] == []


def test_bash_env_pass_from_config_and_the_cli(tmp_path, leon_paths):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC")}
    env.update(LEON_HOME=str(leon_paths.home), LEON_CACHE=str(leon_paths.cache))
    leon_paths.home.mkdir(parents=True)
    config = leon_paths.home / "config.toml"
    config.write_text('[tools]\nbash_env_pass = ["ANTHROPIC_API_KEY"]\n')
    out = subprocess.run([sys.executable, "-m", "leon", "threads", "ls"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "never passed" in out.stderr
    config.unlink()
    out = subprocess.run([sys.executable, "-m", "leon", "config", "keys"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    [line] = [ln for ln in out.stdout.splitlines() if ln.startswith("tools.bash_env_pass")]
    assert "no patterns" in line and "ANTHROPIC_" in line


def test_leon_run_keeps_secrets_out_of_commands(tmp_path, leon_paths, fake_api):
    ws = tmp_path / "ws"
    ws.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC")}
    env.update(NOT_PASSED)
    env.update(LEON_HOME=str(leon_paths.home), LEON_CACHE=str(leon_paths.cache),
               ANTHROPIC_API_KEY=fake_api.api_key, ANTHROPIC_BASE_URL=fake_api.base_url,
               DEPLOY_HOST="staging.example")
    leon_paths.home.mkdir(parents=True)
    (leon_paths.home / "config.toml").write_text(
        '[tools]\nbash_env_pass = ["DEPLOY_HOST"]\n')
    fake_api.script(tool_use("bash", {"command": "env"}), text("done"))
    out = subprocess.run([sys.executable, "-m", "leon", "run", "--yes", "--workspace", str(ws),
                          "-m", "claude-sonnet-4-6", "show the environment"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    [block] = results_of(fake_api.message_requests()[1])
    content = result_text(block)
    assert not block.get("is_error") and "exit code 0" in content
    seen = _env_lines(content)
    assert seen["DEPLOY_HOST"] == "staging.example" and seen["LEON_WORKSPACE"] == str(ws)
    for name, value in NOT_PASSED.items():
        assert name not in seen and value not in content, name
    assert fake_api.api_key not in content
