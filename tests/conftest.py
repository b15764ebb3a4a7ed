"""Suite-wide policy: a skipped or xfailed test is a failure (CI must never pass by not testing)."""

from __future__ import annotations

import pytest


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    not_run = [*reporter.stats.get("skipped", []), *reporter.stats.get("xfailed", [])]
    if not_run and exitstatus == 0:
        names = ", ".join(sorted({report.nodeid for report in not_run}))
        reporter.write_line(f"FAILED: {len(not_run)} test(s) skipped or xfailed: {names}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
