"""What every command shares: consoles, logging, progress bars, option parsing, error mapping."""

from __future__ import annotations

import inspect
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Optional

import typer
import typer.core
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..errors import FijiportError, UsageError, os_error_message

out = Console(soft_wrap=True)  # results: stdout, so they can be piped
err = Console(stderr=True)  # logs, progress, errors

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def readable_help(text: Optional[str]) -> Optional[str]:
    """A docstring as flowing paragraphs.

    typer's rich help keeps a docstring's single line breaks, which then break sentences in the middle
    in any terminal narrower than the source; here each paragraph becomes one line for rich to wrap.
    A paragraph whose first line is ``\\b`` (click's convention) keeps its lines, without the marker.
    """
    if not text:
        return text
    paragraphs = []
    for paragraph in inspect.cleandoc(text).split("\n\n"):
        if paragraph.startswith("\b"):
            paragraphs.append(paragraph.removeprefix("\b").lstrip("\n"))
        else:
            paragraphs.append(" ".join(line.strip() for line in paragraph.splitlines()))
    return "\n\n".join(paragraphs)


def _flags_without_type(command: typer.core.TyperCommand | typer.core.TyperGroup, ctx: typer.Context) -> None:
    """A flag (or a counted ``-v``) takes no value: show none. typer shows ``<bool>`` (``<int>``), and users
    then type ``--overwrite true``."""
    for param in command.get_params(ctx):
        if (getattr(param, "is_flag", False) or getattr(param, "count", False)) and param.metavar is None:
            param.metavar = ""


class FijiportCommand(typer.core.TyperCommand):
    """A command whose ``--help`` reads well at 80 columns: flowing paragraphs, no ``<bool>`` after flags."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs["help"] = readable_help(kwargs.get("help"))
        super().__init__(*args, **kwargs)

    def format_help(self, ctx: typer.Context, formatter) -> None:
        _flags_without_type(self, ctx)
        super().format_help(ctx, formatter)


class HelpGroup(typer.core.TyperGroup):
    """A command group whose ``--help`` reads as :class:`FijiportCommand`'s does."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs["help"] = readable_help(kwargs.get("help"))
        super().__init__(*args, **kwargs)

    def format_help(self, ctx: typer.Context, formatter) -> None:
        _flags_without_type(self, ctx)
        super().format_help(ctx, formatter)


class FijiportGroup(HelpGroup):
    """The root command: maps fijiport's exceptions to one readable line and an exit code, in one place."""

    def invoke(self, ctx: typer.Context):
        debug = bool(ctx.params.get("debug"))  # options are parsed before invoke
        try:
            with native_stderr_captured(ctx.params.get("verbose", 0) < 2) as native:
                try:
                    return super().invoke(ctx)
                except FijiportError:
                    if debug and native is not None:
                        ctx.meta["fijiport_native_tail"] = _tail(native)
                    raise
        except FijiportError as e:
            if debug:
                err.print_exception()
                if ctx.meta.get("fijiport_native_tail"):
                    err.print("[dim]native library messages:[/]\n" + ctx.meta["fijiport_native_tail"], highlight=False, markup=False)
            err.print(f"[red]error:[/] {e}", highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_USAGE if isinstance(e, UsageError) else EXIT_FAILURE) from None
        except OSError as e:  # disk full, read-only, permissions: the system's refusal, not a bug
            if debug:
                err.print_exception()
            err.print(f"[red]error:[/] {os_error_message(e)}", highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_FAILURE) from None
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/]: nothing half-written was left behind")
            raise typer.Exit(130) from None


@contextmanager
def native_stderr_captured(enabled: bool) -> Iterator[Optional[object]]:
    """Send what C/C++ libraries write to file descriptor 2 (TensorFlow's start-up chatter) to a
    temporary file, while Python's ``sys.stderr`` (progress bars, logs, errors) still reaches the
    terminal. ``-vv`` turns this off."""
    if not enabled:
        yield None
        return
    import tempfile

    try:
        sys.stderr.flush()
        saved_fd = os.dup(2)
    except (OSError, ValueError):
        yield None
        return
    sink = tempfile.TemporaryFile(mode="w+b")  # noqa: SIM115 (closed in the finally below, after fd 2 is restored)
    old_stderr = sys.stderr
    python_stderr = os.fdopen(os.dup(saved_fd), "w", buffering=1)
    redirect = old_stderr is sys.__stderr__  # under test runners sys.stderr is already a Python object
    if redirect:
        sys.stderr = python_stderr
    os.dup2(sink.fileno(), 2)
    try:
        yield sink
    finally:
        os.dup2(saved_fd, 2)
        os.close(saved_fd)
        if redirect:
            sys.stderr = old_stderr
        python_stderr.close()
        sink.close()


def _tail(sink, n_bytes: int = 4000) -> str:
    try:
        sink.flush()
        sink.seek(0, os.SEEK_END)
        size = sink.tell()
        sink.seek(max(0, size - n_bytes))
        return sink.read().decode(errors="replace").strip()
    except (OSError, ValueError):
        return ""


def setup_logging(verbose: int, quiet: bool) -> None:
    """A rich handler on stderr; third-party chatter (TensorFlow, tf2onnx) only with -vv."""
    from rich.logging import RichHandler

    level = logging.WARNING if quiet else (logging.INFO if verbose >= 1 else logging.WARNING)
    if verbose >= 2:
        level = logging.DEBUG
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_fijiport", False):
            root.removeHandler(h)
    handler = RichHandler(console=err, show_path=False, show_time=False, rich_tracebacks=False, markup=False)
    handler._fijiport = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("fijiport").setLevel(level)
    third_party = logging.DEBUG if verbose >= 2 else logging.ERROR
    for name in ("tensorflow", "absl", "tf2onnx", "h5py", "matplotlib", "PIL", "bioimageio", "httpx"):
        logging.getLogger(name).setLevel(third_party)
    logging.getLogger("fijiport.thirdparty").setLevel(logging.DEBUG if verbose >= 2 else logging.WARNING)
    if verbose < 2:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        warnings.filterwarnings("ignore", message=".*tf_keras.*")
        warnings.filterwarnings("ignore", message=".*HDF5 file via `model.save\\(\\)`.*")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        try:
            from loguru import logger as loguru_logger  # bioimageio's logger

            loguru_logger.remove()
            loguru_logger.add(sys.stderr, level="ERROR")
        except ImportError:
            pass


def progress_bar(transient: bool = False) -> Progress:
    """Progress on stderr. A transient bar is off where stderr is not a terminal (a pipe, a log file, a
    test): it would draw nothing there, yet rich ends it with an empty line, which then came before the
    error message of every failed ``prepare`` and ``qc``."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=transient,
        disable=transient and not err.is_interactive,
    )


@contextmanager
def spinner(description: str) -> Iterator[Callable[[str], None]]:
    """A one-line status that callbacks update with the current step."""
    with err.status(description) as status:

        def update(message: str) -> None:
            status.update(f"{description}: {message}")
            logging.getLogger("fijiport.cli").info("%s", message)

        yield update


def parse_tiles(text: Optional[str]) -> Optional[tuple[int, ...]]:
    """``--tiles 1,4,4`` as a tuple (None when not given); a value below 1 is a usage error, before any model loads."""
    values = parse_numbers(text, int, "--tiles")
    if values and any(v < 1 for v in values):
        raise typer.BadParameter(f"{text!r}: every value must be 1 or more (1 = that axis untiled)", param_hint="--tiles")
    return tuple(values) if values else None


def parse_numbers(text: Optional[str], kind: type, option: str, count: Optional[int] = None) -> Optional[list]:
    """Parse ``"16,64,64"`` (commas or x) into numbers, or raise a usage error naming the option."""
    if text is None:
        return None
    parts = [p for p in text.replace("x", ",").replace(" ", ",").split(",") if p]
    try:
        values = [kind(p) for p in parts]
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a list of {kind.__name__}s, e.g. '64,64'", param_hint=option) from None
    if not values or (count is not None and len(values) != count):
        raise typer.BadParameter(f"expected {count or 'one or more'} comma-separated values, got {text!r}", param_hint=option)
    return values


STATUS_STYLE = {
    "passed": "[green]passed[/]",
    "warning": "[yellow]warning[/]",
    "failed": "[red]failed[/]",
    "n/a": "[dim]n/a[/]",
    "missing": "[red]missing[/]",
}
"""How each :class:`~fijiport.package.report.Status` shows in a terminal (one vocabulary for every report)."""


def styled(status) -> str:
    return STATUS_STYLE.get(str(status), str(status))


def print_diffs(title: str, diffs: dict[str, float], column: str) -> None:
    """A table of weight formats and their max |diff| to a reference, on stdout."""
    from rich.table import Table

    table = Table(title=title)
    table.add_column("weights")
    table.add_column(column, justify="right")
    for fmt, d in diffs.items():
        table.add_row(fmt, f"{d:.2g}")
    out.print(table)
