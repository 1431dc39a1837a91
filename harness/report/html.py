"""reports/index.html: the page a person reads, rendered from what the directory holds."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jinja2

from harness.paths import TEMPLATES_DIR
from harness.report.page import collect
from harness.report.runinfo import finish_run, invocation, start_run

PAGE = "index.html"


def write_page(reports: Path) -> Path:
    """(Re)write reports/index.html from the directory's files; returns its path."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    path = reports / PAGE
    path.write_text(env.get_template("index.html.j2").render(p=collect(reports)))
    return path


@contextlib.contextmanager
def reported_run(reports: Path, facts: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """run.json before the work, and at its end, however it ends, run.json completed and
    the page written: a run that broke still leaves a page saying what there is."""
    run = start_run(reports, invocation(), facts)
    try:
        yield run
    finally:
        finish_run(reports, run)
        write_page(reports)
