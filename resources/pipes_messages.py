"""Pipes messages from a child process, read as whole lines only.

Dagster's file message reader tails the messages file with `readline()` and parses whatever it
gets; when it catches the child in the middle of writing a line (seen under CPU load during a
CPU training run), it parses half a message, its reader thread dies, and the rest of the run's
metrics and the final materialization are lost. This reader keeps a partial line until its
newline arrives.
"""

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import dagster as dg


def complete_lines(path: str, should_stop: Callable[[], bool]) -> Iterator[str]:
    """Lines of a file another process is appending to, each yielded once it is complete."""
    pending = ""
    with open(path, encoding="utf-8") as stream:
        while True:
            chunk = stream.readline()
            if chunk:
                pending += chunk
                if pending.endswith("\n"):
                    yield pending
                    pending = ""
            elif should_stop():
                if pending.strip():  # the writer ended without a newline: the message is whole
                    yield pending
                return
            else:
                time.sleep(0.01)


class _WholeLineFileReader(dg.PipesFileMessageReader):
    def _reader_thread(self, handler, is_resource_complete) -> None:
        try:
            for line in complete_lines(self._path, is_resource_complete.is_set):
                handler.handle_message(json.loads(line))
        except Exception:
            handler.report_pipes_framework_exception(f"{type(self).__name__} reader thread", sys.exc_info())
            raise


class WholeLineMessageReader(dg.PipesTempFileMessageReader):
    """Drop-in for PipesSubprocessClient's default reader (a temporary messages file)."""

    @contextmanager
    def read_messages(self, handler) -> Iterator[dict]:
        with tempfile.TemporaryDirectory() as folder:
            reader = _WholeLineFileReader(os.path.join(folder, "messages"),
                                          include_stdio_in_messages=self._include_stdio_in_messages)
            with reader.read_messages(handler) as params:
                yield params
