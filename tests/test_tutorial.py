"""The tutorial (docs/tutorial.md) is followed to the letter, so it cannot rot.

The page's markup is the test's script. Every fenced block is one of two kinds, and any other
block fails the test, so nothing on the page escapes it:

- a ``console`` block: each ``$ command`` line is run (``plugport`` is the real CLI of this
  checkout, as a subprocess; ``cd`` changes the directory the next commands run in) and must
  exit 0, or the code its ``# exits N`` comment names; each line under it is output that must
  appear on one output line, with whitespace collapsed and ``...`` standing for anything;
- a block with ``title="PATH"`` (a file the reader writes): its text is written to PATH.

Everything happens in tmp_path: the host home is ``./plugport-home`` there, HOME points there,
and no ``PLUGPORT_*`` variable of the caller leaks in; the sandbox is ``strict``.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
TUTORIAL = ROOT / "docs" / "tutorial.md"

FENCE = re.compile(r"^```(?P<lang>[\w-]*)(?P<attrs>[^\n]*)\n(?P<body>.*?)^```\s*$", re.M | re.S)
TITLE = re.compile(r'title="(?P<title>[^"]+)"')
EXITS = re.compile(r"\s+#\s*exits (?P<code>\d+)\s*$")
SHELL_SYNTAX = {"|", "||", "&&", ";", ">", ">>", "<", "&"}


@dataclass(frozen=True)
class Step:
    """Run ``command`` (expecting ``exit_code`` and ``expected`` lines) or write ``path``."""

    line: int
    command: list[str] | None = None
    exit_code: int = 0
    expected: tuple[str, ...] = ()
    path: str | None = None
    text: str = ""


def parse(markdown: str) -> list[Step]:
    steps: list[Step] = []
    for block in FENCE.finditer(markdown):
        line = markdown.count("\n", 0, block.start()) + 1
        lang, body = block.group("lang"), block.group("body")
        title = TITLE.search(block.group("attrs"))
        if lang == "console":
            steps.extend(_console_steps(body, line))
        elif title and "/" in title.group("title"):
            steps.append(Step(line, path=title.group("title"), text=body))
        else:
            pytest.fail(
                f"tutorial.md line {line}: a ```{lang} block that is neither executed (console) "
                'nor a file to write (title="path/to/file"); the test would not check it'
            )
    return steps


def _console_steps(body: str, fence_line: int) -> list[Step]:
    steps: list[Step] = []
    line = fence_line
    command: list[str] | None = None
    exit_code, expected = 0, []
    for offset, text in enumerate(body.splitlines(), start=1):
        if text.startswith("$ "):
            if command is not None:
                steps.append(Step(line, command, exit_code, tuple(expected)))
            line, expected = fence_line + offset, []
            shown = text[2:]
            exits = EXITS.search(shown)
            exit_code = int(exits.group("code")) if exits else 0
            command = shlex.split(EXITS.sub("", shown))
            syntax = SHELL_SYNTAX.intersection(command)
            assert not syntax, f"tutorial.md line {line}: no shell syntax here: {syntax}"
        elif text.strip():
            assert command is not None, f"tutorial.md line {fence_line + offset}: output, no $"
            expected.append(text)
    if command is not None:
        steps.append(Step(line, command, exit_code, tuple(expected)))
    return steps


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _shows(output: str, expected: str) -> bool:
    """Whether one line of ``output`` holds ``expected``'s parts (split at ``...``) in order."""
    parts = [_collapse(part) for part in expected.split("...")]
    parts = [part for part in parts if part]
    for line in output.splitlines():
        position, text = 0, _collapse(line)
        for part in parts:
            found = text.find(part, position)
            if found < 0:
                break
            position = found + len(part)
        else:
            return True
    return not parts


def _argv(command: list[str]) -> list[str]:
    program, *args = command
    if program == "plugport":
        return [sys.executable, "-m", "plugport", *args]
    if program == "pytest":
        return [sys.executable, "-m", "pytest", *args]
    return command


def _environment(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLUGPORT_")}
    python_path = [str(ROOT / "src"), *filter(None, [env.get("PYTHONPATH")])]
    env |= {
        "PYTHONPATH": os.pathsep.join(python_path),
        "PLUGPORT_SANDBOX": "strict",
        "HOME": str(tmp_path / "home"),
        "COLUMNS": "120",
        "NO_COLOR": "1",
        "TERM": "dumb",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    return env


def test_tutorial_markup_refuses_a_block_it_would_not_check() -> None:
    with pytest.raises(pytest.fail.Exception, match="line 3: a ```python block that is neither"):
        parse("# T\n\n```python\nprint('unchecked')\n```\n")
    steps = parse('```console\n$ plugport x --arg a="b c"  # exits 2\nout ... put\n```\n')
    assert steps == [Step(2, ["plugport", "x", "--arg", "a=b c"], 2, ("out ... put",))]
    assert _shows("  a  out  and   put\n", "out ... put")
    assert not _shows("put then out\n", "out ... put")


@pytest.mark.slow
def test_tutorial_runs_as_written(tmp_path: Path) -> None:
    steps = parse(TUTORIAL.read_text(encoding="utf-8"))
    commands = [step.command[:2] for step in steps if step.command]
    for needed in ("init", "validate", "pack", "install", "run", "status", "audit"):
        assert ["plugport", needed] in commands, f"the tutorial no longer runs plugport {needed}"
    assert ["pytest", "-q"] in commands
    env, cwd = _environment(tmp_path), tmp_path
    (tmp_path / "home").mkdir()
    for step in steps:
        if step.path is not None:
            target = cwd / step.path
            assert target.parent.is_dir(), f"tutorial.md line {step.line}: no {target.parent}"
            target.write_text(step.text, encoding="utf-8")
            continue
        assert step.command is not None
        if step.command[0] == "cd":
            cwd = (cwd / step.command[1]).resolve()
            continue
        result = subprocess.run(
            _argv(step.command),
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        output = result.stdout + result.stderr
        where = f"tutorial.md line {step.line}: $ {shlex.join(step.command)}\n{output}"
        assert result.returncode == step.exit_code, where
        missing = [line for line in step.expected if not _shows(output, line)]
        assert missing == [], where
    assert (tmp_path / "plugport-home").is_dir()  # the host home was the tutorial's own
