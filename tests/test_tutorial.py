"""The tutorial (docs/tutorial.md) is followed to the letter, so it cannot rot.

The page's markup is the test's script. Every fenced block is one of these kinds, and any other
block fails the test, so nothing on the page escapes it:

- a ``console`` block: each ``$ command`` line is run (``plugport`` is the real CLI of this
  checkout, as a subprocess; ``cd`` changes the directory the next commands run in) and must
  exit 0, or the code its ``# exits N`` comment names; each line under it is output that must
  appear on one output line, with whitespace collapsed and ``...`` standing for anything;
- a command marked ``# keeps running`` (``plugport dev``) is started in the background; the
  steps after it run once every line under it has appeared;
- a ``console`` block without a ``$`` line is more output of that background command: each line
  must appear after the previous such block (and the output must then settle, as a reader
  waits for the reload before the next call); a ``^C`` line sends it SIGINT, the lines after it
  are what it prints while stopping, and it must then exit 0;
- a ``text`` block titled ``dev page``: each ``call TARGET {JSON arguments}`` line is made on
  the background command's page (``POST /api/call``, as the page's Call button does), and the
  lines under it must appear in the answer as the page shows it (JSON, indented by 2);
- a block with ``title="PATH"`` (a file the reader writes): its text is written to PATH.

Everything happens in tmp_path: the host home is ``./plugport-home`` there, HOME points there,
and no ``PLUGPORT_*`` variable of the caller leaks in; the sandbox is ``strict``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).parent.parent
TUTORIAL = ROOT / "docs" / "tutorial.md"

FENCE = re.compile(r"^```(?P<lang>[\w-]*)(?P<attrs>[^\n]*)\n(?P<body>.*?)^```\s*$", re.M | re.S)
TITLE = re.compile(r'title="(?P<title>[^"]+)"')
EXITS = re.compile(r"\s+#\s*exits (?P<code>\d+)\s*$")
BACKGROUND = re.compile(r"\s+#\s*keeps running\b.*$")
PAGE_CALL = re.compile(r"^call (?P<target>\S+) (?P<args>\{.*\})\s*$")
PAGE_URL = re.compile(r"page: (?P<url>http://127\.0\.0\.1:\d+/)")
WAIT_S = 30.0
SETTLED_S = 0.6  # longer than dev's watcher debounce (300 ms): no reload is still coming
SHELL_SYNTAX = {"|", "||", "&&", ";", ">", ">>", "<", "&"}


@dataclass(frozen=True)
class Step:
    """Run ``command`` (expecting ``exit_code`` and ``expected`` lines; in the background when
    ``background``), write ``path``, read more of the background command's output (``follow``;
    SIGINT first when ``interrupt``) or call ``page_call`` (target, arguments) on its page."""

    line: int
    command: list[str] | None = None
    exit_code: int = 0
    expected: tuple[str, ...] = ()
    path: str | None = None
    text: str = ""
    background: bool = False
    follow: bool = False
    interrupt: bool = False
    page_call: tuple[str, dict[str, object]] | None = None


def parse(markdown: str) -> list[Step]:
    steps: list[Step] = []
    for block in FENCE.finditer(markdown):
        line = markdown.count("\n", 0, block.start()) + 1
        lang, body = block.group("lang"), block.group("body")
        title = TITLE.search(block.group("attrs"))
        if lang == "console" and not body.lstrip().startswith("$ "):
            steps.extend(_follow_steps(body, line))
        elif lang == "console":
            steps.extend(_console_steps(body, line))
        elif lang == "text" and title and title.group("title") == "dev page":
            steps.extend(_page_steps(body, line))
        elif title and "/" in title.group("title"):
            steps.append(Step(line, path=title.group("title"), text=body))
        else:
            pytest.fail(
                f"tutorial.md line {line}: a ```{lang} block that is neither executed (console, "
                'text title="dev page") nor a file to write (title="path/to/file"); the test '
                "would not check it"
            )
    return steps


def _console_steps(body: str, fence_line: int) -> list[Step]:
    steps: list[Step] = []
    line = fence_line
    command: list[str] | None = None
    exit_code, expected, background = 0, [], False
    for offset, text in enumerate(body.splitlines(), start=1):
        if text.startswith("$ "):
            if command is not None:
                steps.append(Step(line, command, exit_code, tuple(expected), background=background))
            line, expected = fence_line + offset, []
            shown = text[2:]
            exits = EXITS.search(shown)
            exit_code = int(exits.group("code")) if exits else 0
            background = BACKGROUND.search(shown) is not None
            command = shlex.split(BACKGROUND.sub("", EXITS.sub("", shown)))
            syntax = SHELL_SYNTAX.intersection(command)
            assert not syntax, f"tutorial.md line {line}: no shell syntax here: {syntax}"
        elif text.strip():
            assert command is not None, f"tutorial.md line {fence_line + offset}: output, no $"
            expected.append(text)
    if command is not None:
        steps.append(Step(line, command, exit_code, tuple(expected), background=background))
    return steps


def _follow_steps(body: str, fence_line: int) -> list[Step]:
    """More output of the background command; ``^C`` interrupts it."""
    steps: list[Step] = []
    line, expected, interrupt = fence_line + 1, [], False
    for offset, text in enumerate(body.splitlines(), start=1):
        if text.strip() == "^C":
            if expected:
                steps.append(Step(line, expected=tuple(expected), follow=True))
            line, expected, interrupt = fence_line + offset, [], True
        elif text.strip():
            expected.append(text)
    steps.append(Step(line, expected=tuple(expected), follow=True, interrupt=interrupt))
    return steps


def _page_steps(body: str, fence_line: int) -> list[Step]:
    steps: list[Step] = []
    call: tuple[str, dict[str, object]] | None = None
    line, expected = fence_line, []
    for offset, text in enumerate(body.splitlines(), start=1):
        found = PAGE_CALL.match(text)
        if found:
            if call is not None:
                steps.append(Step(line, expected=tuple(expected), page_call=call))
            line, expected = fence_line + offset, []
            call = (found.group("target"), json.loads(found.group("args")))
        elif text.strip():
            assert call is not None, f"tutorial.md line {fence_line + offset}: no call line"
            expected.append(text)
    if call is not None:
        steps.append(Step(line, expected=tuple(expected), page_call=call))
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


@dataclass
class Background:
    """The command the page keeps running (``plugport dev``), its output read by a thread."""

    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)
    seen: int = 0  # how much output the previous steps have accounted for
    last_output: float = field(default_factory=time.monotonic)
    reader: threading.Thread | None = None

    @classmethod
    def start(cls, argv: list[str], cwd: Path, env: dict[str, str]) -> Background:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        background = cls(process)
        background.reader = threading.Thread(target=background._read, daemon=True)
        background.reader.start()
        return background

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            self.last_output = time.monotonic()

    def text(self, start: int = 0) -> str:
        return "".join(self.output[start:])

    def wait_for(self, expected: tuple[str, ...], where: str, *, settle: bool) -> None:
        """Until every expected line has appeared after what earlier steps saw (then, with
        ``settle``, until the output is quiet), or fail with what was printed."""
        deadline = time.monotonic() + WAIT_S
        while any(not _shows(self.text(self.seen), line) for line in expected):
            assert time.monotonic() < deadline, f"{where}\n{self.text()}"
            assert self.process.poll() is None or expected == (), f"{where}\n{self.text()}"
            time.sleep(0.05)
        while settle and time.monotonic() - self.last_output < SETTLED_S:
            time.sleep(0.05)
        self.seen = len(self.output)

    def page_url(self) -> str:
        found = PAGE_URL.search(self.text())
        assert found is not None, f"plugport dev printed no page URL\n{self.text()}"
        return found.group("url")

    def call(self, target: str, args: dict[str, object]) -> str:
        """What the page's Call button shows: the answer, as JSON indented by 2."""
        with httpx.Client(trust_env=False, timeout=WAIT_S) as client:
            response = client.post(
                self.page_url() + "api/call", json={"target": target, "args": args}
            )
        return json.dumps(response.json(), indent=2, ensure_ascii=False)

    def stop(self) -> None:
        """Ctrl-C, then SIGKILL if it does not stop: a failed test leaves nothing running."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.reader is not None:
            self.reader.join(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()


def test_tutorial_markup_refuses_a_block_it_would_not_check() -> None:
    with pytest.raises(pytest.fail.Exception, match="line 3: a ```python block that is neither"):
        parse("# T\n\n```python\nprint('unchecked')\n```\n")
    steps = parse('```console\n$ plugport x --arg a="b c"  # exits 2\nout ... put\n```\n')
    assert steps == [Step(2, ["plugport", "x", "--arg", "a=b c"], 2, ("out ... put",))]
    assert _shows("  a  out  and   put\n", "out ... put")
    assert not _shows("put then out\n", "out ... put")


def test_tutorial_markup_for_dev_and_its_page() -> None:
    page = (
        "```console\n$ plugport dev p  # keeps running until Ctrl-C\nwatching ...\n```\n"
        '```text title="dev page"\ncall greet {"name": "Ada"}\n  "ok": true,\n```\n'
        "```console\nreloaded ...\n^C\nstopped\n```\n"
    )
    assert parse(page) == [
        Step(2, ["plugport", "dev", "p"], expected=("watching ...",), background=True),
        Step(6, expected=('  "ok": true,',), page_call=("greet", {"name": "Ada"})),
        Step(10, expected=("reloaded ...",), follow=True),
        Step(11, expected=("stopped",), follow=True, interrupt=True),
    ]
    with pytest.raises(AssertionError, match="line 2: no call line"):
        parse('```text title="dev page"\n"ok": true\n```\n')


@pytest.mark.slow
def test_tutorial_runs_as_written(tmp_path: Path) -> None:
    steps = parse(TUTORIAL.read_text(encoding="utf-8"))
    commands = [step.command[:2] for step in steps if step.command]
    for needed in ("init", "dev", "check", "pack", "sign", "install", "run", "logs", "status"):
        assert ["plugport", needed] in commands, f"the tutorial no longer runs plugport {needed}"
    assert ["plugport", "audit"] in commands
    assert ["pytest", "-q"] in commands
    assert any(step.page_call for step in steps), "the tutorial no longer uses dev's page"
    assert any(step.interrupt for step in steps), "the tutorial no longer stops dev"
    env, cwd = _environment(tmp_path), tmp_path
    (tmp_path / "home").mkdir()
    background: Background | None = None
    try:
        for step in steps:
            background = _follow(step, cwd, env, background)
            if step.command is not None and step.command[0] == "cd":
                cwd = (cwd / step.command[1]).resolve()
    finally:
        if background is not None:
            background.stop()
    assert background is not None
    assert background.process.returncode == 0, background.text()
    assert (tmp_path / "plugport-home").is_dir()  # the host home was the tutorial's own


def _follow(
    step: Step, cwd: Path, env: dict[str, str], background: Background | None
) -> Background | None:
    """Do one step; return the background command, started or stopped here or before."""
    where = f"tutorial.md line {step.line}"
    if step.path is not None:
        target = cwd / step.path
        assert target.parent.is_dir(), f"{where}: no {target.parent}"
        target.write_text(step.text, encoding="utf-8")
        return background
    if step.follow or step.page_call:
        assert background is not None, f"{where}: nothing runs in the background"
        if step.page_call:
            shown = background.call(*step.page_call)
            missing = [line for line in step.expected if not _shows(shown, line)]
            assert missing == [], f"{where}: the page showed\n{shown}"
            return background
        if step.interrupt:
            background.process.send_signal(signal.SIGINT)
            assert background.process.wait(timeout=WAIT_S) == 0, background.text()
        background.wait_for(step.expected, where, settle=not step.interrupt)
        return background
    assert step.command is not None
    if step.command[0] == "cd":
        return background
    if step.background:
        assert background is None, f"{where}: one background command at a time"
        background = Background.start(_argv(step.command), cwd, env)
        background.wait_for(step.expected, f"{where}: $ {shlex.join(step.command)}", settle=True)
        return background
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
    shown = f"{where}: $ {shlex.join(step.command)}\n{output}"
    assert result.returncode == step.exit_code, shown
    missing = [line for line in step.expected if not _shows(output, line)]
    assert missing == [], shown
    return background
