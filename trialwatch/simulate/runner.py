"""A paced run of a scenario against a running stack.

Study days advance at ``days_per_second``; each day's messages go out in batches (a batch is one source's
messages of one day, cut after a serious AE). After a serious AE the run waits until its signals have reached
the notifier and the officer has seen them, so that a clock is never breached only because the simulation ran
ahead of the pipeline. Before each batch, the officer records the reports that are due by then.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import orjson

from shared.db import create_engine
from shared.settings import DatabaseSettings
from trialwatch.simulate.episodes import build
from trialwatch.simulate.officer import SafetyOfficer, Submission
from trialwatch.simulate.pipeline import PipelineProbe
from trialwatch.simulate.plan import Transmission
from trialwatch.simulate.scenario import Scenario
from trialwatch.simulate.senders import Sender, SentDirectory
from trialwatch.simulate.view import View

ALERT_SECONDS = 60.0
DRAIN_SECONDS = 240.0


@dataclass(frozen=True)
class RunResult:
    transmissions: int
    files: list[Path]
    rejected: int
    seconds: float
    drain_seconds: float
    left_unacknowledged: int


def batches(transmissions: list[Transmission]) -> Iterator[list[Transmission]]:
    batch: list[Transmission] = []
    for item in transmissions:
        if batch and (item.fmt != batch[0].fmt or item.study_day != batch[0].study_day):
            yield batch
            batch = []
        batch.append(item)
        if item.serious:
            yield batch
            batch = []
    if batch:
        yield batch


class Run:
    def __init__(
        self, scenario: Scenario, env: Mapping[str, str], view: View, sent_dir: Path, days_per_second: float
    ) -> None:
        self.scenario = scenario
        self.view = view
        self.pace = days_per_second
        self.sent = SentDirectory(sent_dir)
        self.sender = Sender(env)
        self.officer = SafetyOfficer(env, scenario.officer, scenario.study_id, view.event)
        self.engine = create_engine(DatabaseSettings.from_mapping(env), application_name="trialwatch-simulate")
        self.probe = PipelineProbe(self.engine)
        self.rejected = 0

    async def close(self) -> None:
        await self.sender.close()
        await self.officer.close()
        await self.engine.dispose()

    async def run(self, escalation_wait: float) -> RunResult:
        transmissions = build(self.scenario)
        started = time.monotonic()
        await self.officer.start()
        poller = asyncio.create_task(self._poll_officer())
        try:
            await self._send_all(transmissions, started)
            for submission in sorted(self.officer.pending.values(), key=lambda item: item.at):
                await self._submit(submission)
            drain = await self.probe.drained(DRAIN_SECONDS)
            await self._await_escalation(escalation_wait)
            await self._await_delivered(ALERT_SECONDS)
            await self.officer.poll()
            drain += await self.probe.drained(DRAIN_SECONDS)
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
        return RunResult(
            len(transmissions),
            self.sent.files(),
            self.rejected,
            time.monotonic() - started,
            drain,
            len(self.officer.left),
        )

    async def _send_all(self, transmissions: list[Transmission], started: float) -> None:
        first_day = transmissions[0].study_day
        for batch in batches(transmissions):
            head = batch[0]
            wait = started + (head.study_day - first_day) / self.pace - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self.view.day(head.study_day, head.at)
            for item in batch:
                if item.after_alerts:
                    await self.probe.sent(item.after_alerts, ALERT_SECONDS)
            for submission in self.officer.due(batch[-1].at):
                await self._submit(submission)
            sent = self.sent.batch(batch)
            report = await self.sender.send(sent)
            self.rejected += len(report.rejected)
            self.view.sent(batch, report)
            if batch[-1].serious:
                await self.probe.alerted(batch[-1].evidence, ALERT_SECONDS)
                await self.officer.poll()

    async def _submit(self, submission: Submission) -> None:
        record = await self.officer.submit(submission)
        if record is None:
            return
        # Published by the notifier, not sent by us: kept in the sent directory so replay sees it too. It
        # travels through Kafka to ingest: the run waits for it, so it stops its clock before the data clock
        # passes due_at (the simulation must not outrun the officer).
        self.sent.write(f"officer-{submission.clock.lower()}", "records", orjson.dumps(record) + b"\n")
        await self.probe.evaluated(f"REC:{record['STUDYID']}:REG:{record['RECID']}", ALERT_SECONDS)

    async def _poll_officer(self) -> None:
        while True:
            await self.officer.poll()
            await asyncio.sleep(float(self.scenario.officer.get("poll_seconds", 0.5)))

    async def _await_delivered(self, seconds: float) -> None:
        """Gives the last alerts time to go out (a NOTIFY waits for its digest), so that the officer sees
        every alert it is sent before the run ends; bounded: the summary shows what did not go out."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await self.officer.poll()
            if not self.officer.undelivered():
                return
            await asyncio.sleep(0.5)

    async def _await_escalation(self, seconds: float) -> None:
        """Gives the alerts the officer leaves alone time to escalate once (the notifier's ack window)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await self.officer.poll()
            left = [self.officer.seen[alert_id] for alert_id in self.officer.left]
            if all(alert["escalation_level"] >= 1 for alert in left):
                return
            await asyncio.sleep(1.0)


async def run_scenario(
    scenario: Scenario,
    env: Mapping[str, str],
    view: View,
    sent_dir: Path,
    days_per_second: float,
    *,
    escalation_wait: float = 0.0,
) -> RunResult:
    run = Run(scenario, env, view, sent_dir, days_per_second)
    view.start()
    try:
        return await run.run(escalation_wait)
    finally:
        view.stop()
        await run.close()


def write_plan(scenario: Scenario, directory: Path) -> list[Path]:
    """The files a run would send, without sending them (nor the officer's REG records): for tests and replay."""
    sent = SentDirectory(directory)
    for batch in batches(build(scenario)):
        sent.batch(batch)
    return sent.files()
