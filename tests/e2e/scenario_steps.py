"""
Step-by-step client scenarios run in a subprocess (their client libraries
bring an asyncio loop of their own), each step reported as one JSON line,
and the pytest side that runs them and reads the reports.
"""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import traceback

#: Longest one step may take.
STEP_TIMEOUT_S = 60


class StepFailed(Exception):
    """A step's expectation did not hold."""


def expect(response, kind):
    """The response, if nio parsed it as C{kind}; otherwise fail with what came back."""
    if not isinstance(response, kind):
        detail = getattr(response, "message", None) or repr(response)
        status = getattr(response, "status_code", None)
        raise StepFailed(f"expected {kind.__name__}, got {type(response).__name__} "
                         f"(status {status}): {detail}")
    return response


def check(condition, message: str) -> None:
    if not condition:
        raise StepFailed(message)


def report(step: str, ok: bool, detail) -> None:
    print(json.dumps({"step": step, "ok": ok, "detail": str(detail)}), flush=True)


class StepScenario:
    """
    Runs C{STEPS}, a list of C{(method name, names of the steps it needs)},
    in order; a step whose prerequisites failed is reported as not run.
    """

    STEPS: list[tuple[str, tuple[str, ...]]] = []

    def __init__(self):
        self.results: dict[str, bool] = {}

    async def run(self) -> bool:
        for name, requires in self.STEPS:
            missing = [r for r in requires if not self.results.get(r)]
            if missing:
                self.results[name] = False
                report(name, False, f"not run: needs {', '.join(missing)}")
                continue
            try:
                detail = await asyncio.wait_for(getattr(self, name)(), STEP_TIMEOUT_S)
            except StepFailed as e:
                self.results[name] = False
                report(name, False, str(e))
            except Exception as e:  # noqa: BLE001 - report whatever broke
                self.results[name] = False
                report(name, False, f"{type(e).__name__}: {e}\n{traceback.format_exc()}")
            else:
                self.results[name] = True
                report(name, True, detail)
        return all(self.results.get(name) for name, _ in self.STEPS)


def run_scenario(script, *args: str, interpreter: str = sys.executable) -> dict[str, tuple[bool, str]]:
    """
    Run a scenario script with C{interpreter} (the test venv's Python
    unless told); return C{step -> (ok, detail)} from its reports.
    """
    import pytest

    completed = subprocess.run(
        [interpreter, str(script), *args], capture_output=True, text=True, timeout=300,
    )
    print(completed.stdout, completed.stderr, sep="\n")  # shown with -s or on failure
    results = {}
    for line in completed.stdout.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        results[record["step"]] = (record["ok"], record["detail"])
    if not results:
        pytest.fail(f"{script} reported nothing (exit {completed.returncode}):\n"
                    f"{completed.stdout}\n{completed.stderr}")
    failed = [step for step, (ok, _) in results.items() if not ok]
    assert (completed.returncode == 0) == (not failed), (completed.returncode, completed.stderr)
    return results
