"""The zygote's environment: decided from the host's without starting anything. Every worker
is a fork of the zygote and keeps its memory, so what is left out here is what no plugin can
read; the attack suite checks the same in real workers' memory."""

from __future__ import annotations

from plugport.runtime.launcher import ZYGOTE_ENVIRONMENT, zygote_environment

HOST = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "PYTHONPATH": "/srv/app/src",
    "HOME": "/home/app",
    "DATABASE_URL": "postgresql://app:hunter2@db/app",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI",
    "PLUGPORT_INDEX_KEY_FILE": "/etc/plugport/index.key",
    "SLACK_BOT_TOKEN": "xoxb-1",
    "PYTHONSTARTUP": "/home/app/.pythonrc",
}


def test_only_what_the_interpreter_needs_is_kept() -> None:
    assert zygote_environment(HOST) == {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PYTHONPATH": "/srv/app/src",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def test_no_secret_value_of_the_host_is_passed_on() -> None:
    values = "\n".join(zygote_environment(HOST).values())
    for name in ("DATABASE_URL", "AWS_SECRET_ACCESS_KEY", "SLACK_BOT_TOKEN", "HOME"):
        assert HOST[name] not in values, name


def test_the_kept_names_are_the_interpreters_own() -> None:
    assert all(
        name == "PATH" or name.startswith(("LANG", "LC_", "TZ", "PYTHON"))
        for name in ZYGOTE_ENVIRONMENT
    )
    assert zygote_environment({}) == {"PYTHONDONTWRITEBYTECODE": "1"}
