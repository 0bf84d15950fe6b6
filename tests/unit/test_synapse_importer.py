"""The import from Synapse's orchestration (checks, resuming, verification), on fakes and a fake clock."""
from __future__ import annotations

import pytest
from twisted.internet import defer, task

from ruma_tx.services.ports.synapse_import import StepProgress
from ruma_tx.services.synapse_import import ImportRefused, SynapseImporter


class FakeProgress:
    def __init__(self, imported: tuple[str, bool] | None = None, has_data: bool = False) -> None:
        self.imported = imported
        self.has_data = has_data
        self.steps: dict[str, StepProgress] = {}
        self.finished = False

    async def imported_server(self):
        return self.imported

    async def holds_users_or_rooms(self):
        return self.has_data

    async def begin(self, server_name, now_ms):
        self.imported = self.imported or (server_name, False)

    async def step_progress(self, step):
        return self.steps.get(step, StepProgress(None, 0, False))

    async def record_step(self, step, progress, now_ms):
        self.steps[step] = progress

    async def finish(self, now_ms):
        self.finished = True


class FakeStep:
    """A step over items 1..total that imports up to C{imports} of them, one batch per item."""

    def __init__(self, name: str, total: int, imports: int | None = None) -> None:
        self.name = name
        self.total = total
        self.imports = total if imports is None else imports
        self.started_from: list[str | None] = []
        self.done = 0

    async def source_count(self):
        return self.total

    async def imported_count(self):
        return self.done

    async def batches(self, checkpoint):
        self.started_from.append(checkpoint)
        first = 0 if checkpoint is None else int(checkpoint)
        for item in range(first + 1, self.imports + 1):
            self.done = item
            yield 1, str(item)


class FakeView:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str, int, int]] = []

    def step_started(self, step, done, total):
        self.lines.append(("started", step, done, total))

    def advanced(self, step, done, total):
        self.lines.append(("advanced", step, done, total))

    def step_finished(self, step, done, total):
        self.lines.append(("finished", step, done, total))


def importer(steps, progress, server_name="example.org", source_server_name="example.org", view=None):
    return SynapseImporter(server_name, source_server_name, steps, progress, view or FakeView(), task.Clock())


def result(coroutine):
    return defer.ensureDeferred(coroutine).result


def failure(coroutine):
    d = defer.ensureDeferred(coroutine)
    failures = []
    d.addErrback(failures.append)
    return failures[0].value


def test_refuses_another_server_name():
    """Ids cannot change: Synapse's server name must be ruma_tx's."""
    refused = failure(importer([], FakeProgress(), source_server_name="other.org").check())
    assert isinstance(refused, ImportRefused) and "other.org" in str(refused)


def test_refuses_a_database_with_data_of_its_own():
    """Users or rooms without an import record: refused."""
    assert isinstance(failure(importer([], FakeProgress(has_data=True)).check()), ImportRefused)


@pytest.mark.parametrize("recorded, resumes", [(None, False), (("example.org", False), True)])
def test_accepts_an_empty_database_or_its_own_unfinished_import(recorded, resumes):
    """An empty database starts an import; one holding this server's unfinished import resumes it."""
    assert result(importer([], FakeProgress(recorded, has_data=recorded is not None)).check()) is resumes


@pytest.mark.parametrize("recorded", [("example.org", True), ("other.org", False)])
def test_refuses_a_finished_or_foreign_import(recorded):
    """A finished import, or another server's, is not continued."""
    assert isinstance(failure(importer([], FakeProgress(recorded, has_data=True)).check()), ImportRefused)


def test_resumes_after_the_last_recorded_checkpoint():
    """Finished steps are skipped; the interrupted one continues after its checkpoint; the import finishes."""
    progress = FakeProgress(("example.org", False))
    progress.steps = {"users": StepProgress("3", 3, True), "devices": StepProgress("2", 2, False)}
    users, devices = FakeStep("users", 3), FakeStep("devices", 5)
    users.done = 3
    view = FakeView()
    counts = result(importer([users, devices], progress, view=view).run())
    assert users.started_from == [] and devices.started_from == ["2"]
    assert progress.steps["devices"] == StepProgress("5", 5, True)
    assert [(c.step, c.source, c.imported, c.matches) for c in counts] == [
        ("users", 3, 3, True), ("devices", 5, 5, True)]
    assert progress.finished
    assert view.lines[0] == ("finished", "users", 3, 3)
    assert view.lines[1] == ("started", "devices", 2, 5)
    assert view.lines[-1] == ("finished", "devices", 5, 5)


def test_a_mismatch_leaves_the_import_unfinished_and_the_step_to_walk_again():
    """Counts that differ: not finished, and the step starts over on the next run."""
    progress = FakeProgress()
    media = FakeStep("media", 4, imports=3)
    counts = result(importer([media], progress).run())
    assert [(c.source, c.imported, c.matches) for c in counts] == [(4, 3, False)]
    assert not progress.finished
    assert progress.steps["media"] == StepProgress(None, 0, False)
