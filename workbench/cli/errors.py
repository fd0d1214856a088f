"""How the ``workbench`` command fails: one line a person can act on, never a traceback.

* bad input — a :class:`~workbench.core.errors.WorkbenchError` (bad data names file, row and
  column), a file that does not exist, cannot be read or is a folder, a command-line usage
  error — prints ``error: <one line>`` on stderr and exits with :data:`BAD_INPUT` (2);
* anything else is a bug: the traceback goes to a log file (``$WORKBENCH_LOG_DIR``, else
  ``~/.cache/workbench/errors``), the terminal gets one line saying so and where the log is, and
  the exit code is :data:`BUG` (1).

:class:`WorkbenchGroup` is the ``workbench`` group's class (``workbench.cli.main.main``); commands
call :func:`fail` for input they refuse themselves.
"""
from __future__ import annotations

import datetime as dt
import errno
import os
import sys
import tempfile
import traceback
from pathlib import Path
from typing import NoReturn

import click

from workbench.core.encodings import looks_like, not_text
from workbench.core.errors import WorkbenchError

__all__ = ["BAD_INPUT", "BUG", "CommandError", "WorkbenchGroup", "fail", "one_line"]

BAD_INPUT = 2
BUG = 1

#: errors of the operating system that are about the path a person gave
_PATH_ERRNOS = {errno.ENOENT, errno.EACCES, errno.EPERM, errno.EISDIR, errno.ENOTDIR, errno.EEXIST, errno.ENAMETOOLONG,
                errno.ELOOP, errno.EROFS}


def one_line(text) -> str:
    """``text`` on one line: its non-blank lines joined with ' — ', runs of blanks as one."""
    lines = [" ".join(line.split()) for line in str(text).splitlines()]
    return " — ".join(line for line in lines if line) or "failed"


def fail(message) -> NoReturn:
    """Refuse the input: ``error: <message on one line>`` on stderr, exit 2."""
    click.echo(f"error: {one_line(message)}", err=True)
    sys.exit(BAD_INPUT)


class CommandError(click.ClickException, WorkbenchError):
    """A failure shown as ``error: <one line>`` with ``exit_code`` (2: bad input, 1: a bug)."""

    def __init__(self, message: str, exit_code: int = BAD_INPUT):
        super().__init__(one_line(message))
        self.exit_code = exit_code

    def show(self, file=None) -> None:
        click.echo(f"error: {self.format_message()}", err=True, file=file)


def _os_error(exc: OSError) -> str:
    what = exc.strerror or str(exc)
    where = exc.filename if exc.filename is not None else None
    return f"{where}: {what[:1].lower() + what[1:]}" if where is not None else what


def _log_dir() -> Path:
    env = os.environ.get("WORKBENCH_LOG_DIR")
    return Path(env) if env else Path.home() / ".cache" / "workbench" / "errors"


def crash_log(exc: BaseException, command: str) -> Path | None:
    """Write ``exc``'s traceback to a new log file; its path (``None`` if nothing could be written)."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    text = (f"workbench {' '.join(sys.argv[1:])}\ncommand: {command}\nat: {dt.datetime.now().isoformat()}\n\n"
            + "".join(traceback.format_exception(exc)))
    for folder in (_log_dir(), Path(tempfile.gettempdir()) / "workbench-errors"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"error-{stamp}-{os.getpid()}.log"
            path.write_text(text, encoding="utf-8")
            return path
        except OSError:
            continue
    return None


def translate(exc: Exception, command: str) -> CommandError:
    """The one-line :class:`CommandError` for an exception that left a command."""
    if isinstance(exc, WorkbenchError):
        return CommandError(str(exc) or type(exc).__doc__ or "failed", BAD_INPUT)
    if isinstance(exc, OSError) and exc.errno in _PATH_ERRNOS:
        return CommandError(_os_error(exc), BAD_INPUT)
    if isinstance(exc, OSError) and exc.filename is not None:
        return CommandError(_os_error(exc), BUG)
    log = crash_log(exc, command)
    where = f"the details are in {log}" if log else "no log could be written"
    return CommandError(f"`{command}` stopped on an internal error — a bug in the workbench, not in your input; "
                        f"{where} (please send it with your report)", BUG)


def _usage(exc: click.UsageError) -> CommandError:
    path = exc.ctx.command_path if exc.ctx is not None else "workbench"
    return CommandError(f"{exc.format_message()} (see `{path} --help`)", exc.exit_code)


class WorkbenchGroup(click.Group):
    """The ``workbench`` group: every failure of a command under it is one line (see the module doc)."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as exc:
            raise _usage(exc) from None

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.Abort, CommandError, click.exceptions.NoArgsIsHelpError):
            raise
        except click.UsageError as exc:
            raise _usage(exc) from None
        except click.ClickException as exc:
            raise CommandError(exc.format_message(), exc.exit_code) from None
        except BrokenPipeError:
            # the reader went away (`workbench … | head`): not a bug; stdout is closed, so say nothing
            import io
            import os
            import sys

            try:                    # nothing more reaches the closed pipe (not even at exit's flush)
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            except (OSError, ValueError, io.UnsupportedOperation):
                pass
            raise click.exceptions.Exit(141) from None       # as a shell reports SIGPIPE
        except Exception as exc:  # noqa: BLE001 - the one place that turns every failure into one line
            raise translate(exc, _command_path(exc, ctx)) from None


def _command_path(exc: BaseException, ctx) -> str:
    """``workbench lake ingest``: the innermost command the traceback of ``exc`` went through."""
    path = ctx.command_path
    tb = exc.__traceback__
    while tb is not None:
        inner = tb.tb_frame.f_locals.get("ctx")
        if isinstance(inner, click.Context):
            path = inner.command_path
        tb = tb.tb_next
    return path


# ----------------------------------------------------------------------------- reading input files
def sniff(path, expect: str = "text") -> str | None:
    """What is wrong with the file at ``path`` for a reader of ``expect`` (``text`` — also CSV, JSON,
    YAML —, ``xlsx``, ``parquet``, ``any``), in words; ``None`` when nothing obvious is."""
    import zipfile

    p = Path(path)
    if p.is_dir():
        return "is a folder, not a file"
    raw = p.read_bytes()
    if not raw.strip():
        return "the file is empty"
    if expect == "any":
        return None
    if expect == "parquet":
        if raw[:4] != b"PAR1":
            return "not a Parquet file" + (f" (it is {looks_like(raw)})" if looks_like(raw) else "")
        if raw[-4:] != b"PAR1":
            return "the Parquet file is truncated or damaged (its footer is missing)"
        return None
    if expect == "xlsx":
        if not raw.startswith(b"PK\x03\x04"):
            return "not an XLSX workbook" + (f" (it is {looks_like(raw)})" if looks_like(raw) else "")
        try:
            with zipfile.ZipFile(p) as z:
                if "xl/workbook.xml" not in z.namelist():
                    return "a ZIP archive but not an XLSX workbook (no xl/workbook.xml in it)"
        except zipfile.BadZipFile:
            return "the workbook is truncated or damaged (not a complete ZIP archive)"
        return None
    problem = not_text(raw)
    if problem:
        return problem
    try:
        raw.decode("utf-8-sig")
        return None
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data" and exc.end >= len(raw) - 3:
            return "the file is truncated: it ends in the middle of a character"
        if raw.startswith(b"\xef\xbb\xbf"):
            line = raw[: exc.start].count(b"\n") + 1
            return f"it starts with a UTF-8 mark but line {line} is not UTF-8 (is it GBK? save it as UTF-8)"
        try:
            raw.decode("gb18030")
            return None
        except UnicodeDecodeError as exc2:
            line = raw[: exc2.start].count(b"\n") + 1
            return f"line {line} is neither UTF-8 nor GB18030 text (is it a binary file?)"


def describe(exc: BaseException) -> str | None:
    """A reader's exception about a file's content in words; ``None`` for one that is no input problem (a bug)."""
    import json
    import zipfile

    if isinstance(exc, WorkbenchError | CommandError):
        return one_line(exc.format_message() if isinstance(exc, CommandError) else str(exc))
    if isinstance(exc, UnicodeError):
        return "not text in UTF-8 or GB18030"
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON: {exc.msg.lower()} at line {exc.lineno}, column {exc.colno}"
    try:
        import yaml

        if isinstance(exc, yaml.YAMLError):
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            return f"not valid YAML: {getattr(exc, 'problem', None) or 'cannot be parsed'}{where}"
    except ImportError:  # pragma: no cover
        pass
    try:
        import pandas as pd

        if isinstance(exc, pd.errors.EmptyDataError):
            return "the file is empty (no header row)"
        if isinstance(exc, pd.errors.ParserError):
            import re

            m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
            if m:
                return f"row {m.group(2)} has {m.group(3)} cells where the header has {m.group(1)}"
            return "not a readable CSV table"
    except ImportError:  # pragma: no cover
        pass
    try:
        import pyarrow as pa

        if isinstance(exc, pa.ArrowException):
            return "not a readable Parquet file (damaged or another format)"
    except ImportError:  # pragma: no cover
        pass
    if isinstance(exc, zipfile.BadZipFile):
        return "the workbook is damaged (not a complete ZIP archive)"
    if isinstance(exc, OSError):
        return _os_error(exc)
    if isinstance(exc, KeyError):
        return f"column {exc.args[0]!r} is missing" if exc.args else "a required column is missing"
    if isinstance(exc, ValueError | TypeError):
        return one_line(str(exc))
    return None


def read_input(path, reader, *, expect: str = "text", label: str | None = None):
    """``reader(path)``, with a bad file refused in words: ``[label ]PATH: what is wrong`` (exit 2).
    The file is looked at first (:func:`sniff`), then the reader's own errors are described."""
    prefix = f"{label} " if label else ""
    problem = sniff(path, expect)
    if problem:
        raise CommandError(f"{prefix}{path}: {problem}")
    try:
        return reader(path)
    except Exception as exc:  # noqa: BLE001 - described when it is about the input, re-raised (a bug) if not
        msg = describe(exc)
        if msg is None:
            raise
        if str(path) not in msg and Path(path).name not in msg:
            msg = f"{path}: {msg}"
        raise CommandError(prefix + msg) from None
