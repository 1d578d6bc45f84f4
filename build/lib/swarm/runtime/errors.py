"""Bad input ends a run with one clear line and a non-zero exit, never a traceback wall.

Exit codes: 2 for a setting or input the run cannot use (Hydra override errors
included), 3 for a run that stopped cleanly before finishing (its checkpoint is
intact; the same command resumes it), 1 for anything else (and for a sweep with
failed jobs, see swarm/runtime/sweep.py). HYDRA_FULL_ERROR=1 re-raises with the traceback.

This module imports nothing heavy: the CLI uses it before torch is loaded, so a
bad setting fails in about a second.
"""
from __future__ import annotations

import io
import os
import re
import sys
from contextlib import contextmanager
from typing import Callable, Iterator, NoReturn

CONFIG_ERROR = 2
STOPPED = 3


class ConfigError(ValueError):
    """A setting or input the run cannot use; the CLI prints it as one line and exits 2.

    The message starts with the setting it is about: ``"pso.inertia: must be in [0, 1], got 2"``.
    """


class RunStopped(RuntimeError):
    """The run stopped cleanly before finishing (e.g. the judge is down); its checkpoint is intact."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived (`on_signals`): the run unwinds (checkpoint writes finish) and exits 128 + signal.

    A BaseException, like KeyboardInterrupt: no ``except Exception`` on the way
    (a sweep's job_failures, Hydra's job runner) mistakes it for a failed job.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
        self.where: tuple[str, str] | None = None  # (the key, the dir) that resumes it: hydra.run.dir or hydra.sweep.dir

    @property
    def code(self) -> int:
        return 128 + self.signum


def on_signals() -> None:
    """SIGINT and SIGTERM raise `Interrupted` in the main thread, so the run ends like any stopped run.

    Not under submitit (Slurm jobs of hydra/launcher=slurm): its own handlers requeue the job.
    """
    import signal

    if "SUBMITIT_FOLDER" in os.environ:
        return

    def interrupt(signum: int, frame: object) -> None:
        raise Interrupted(signum)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, interrupt)


def first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0].strip() if text else type(err).__name__


def full_error() -> bool:
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


def fail(code: int, message: str) -> NoReturn:
    sys.stderr.write(f"dswarm: error: {message}\n")
    sys.stderr.flush()
    sys.exit(code)


def _omegaconf_message(err: Exception) -> str:
    """``key: problem`` from an OmegaConf error (its text spans several lines of context)."""
    key = getattr(err, "full_key", None)
    msg = first_line(err)
    if type(err).__name__ == "MissingMandatoryValue":
        msg = "required setting is missing (it is ??? in the config; set it on the command line)"
    elif "is not in struct" in msg:
        msg = "required setting is not in the config (was it deleted with ~?)"
    return f"{key}: {msg}" if key else msg


@contextmanager
def exit_on_error(fail: Callable[[int, str], None] = fail) -> Iterator[None]:
    """Inside a job: known failures become one line and an exit code.

    ``fail(code, line)`` reports them: by default on stderr, then exit; a sweep
    job records them in its run dir instead and the sweep goes on.
    """
    from omegaconf.errors import OmegaConfBaseException

    try:
        yield
    except RunStopped as err:
        if full_error():
            raise
        fail(STOPPED, first_line(err))
    except OmegaConfBaseException as err:
        if full_error():
            raise
        fail(CONFIG_ERROR, _omegaconf_message(err))
    except (ConfigError, FileNotFoundError, NotADirectoryError, ValueError) as err:
        if full_error():
            raise
        fail(CONFIG_ERROR, first_line(err))
    except PermissionError as err:
        if full_error():
            raise
        fail(CONFIG_ERROR, f"cannot write {err.filename}: permission denied")
    except OSError as err:
        if full_error() or err.errno is None:
            raise
        fail(CONFIG_ERROR, f"{err.strerror}: {err.filename}")


_UNKNOWN_KEY = re.compile(r"Could not override '(?P<key>[^']+)'\. To append to your config use \+")
_UNKNOWN_OPTION = re.compile(
    r"Could not find '(?P<group>[^']+)/(?P<option>[^'/]+)'\s+Available options in '[^']+':\s*(?P<options>.*?)\s*(?:Config search path|$)"
)
_BAD_TYPE = re.compile(  # a typed setting (swarm/config/schema.py) given a value of another type
    r"Value '(?P<value>.*?)' (?:of type '\w+' could not be converted to (?P<type>\w+)|is not a valid (?P<kind>\w+)).*?full_key: (?P<key>\S+)"
)
_TYPE_WORDS = {"Float": "a number", "Integer": "an integer", "bool": "true or false", "Boolean": "true or false", "str": "a string"}
_BAD_SYNTAX = re.compile(r"(?:no viable alternative at input|mismatched input|extraneous input|token recognition error at:) '(?P<text>[^']*)")


def _known_hydra_error(text: str) -> str:
    """Hydra's common messages, rewritten to start with the setting they are about."""
    if m := _UNKNOWN_KEY.search(text):
        key = m["key"]
        return f"{key}: unknown option (check its spelling; +{key}=VALUE adds a new key)"
    if m := _UNKNOWN_OPTION.search(text):
        group, options = m["group"].replace("/", "."), ", ".join(m["options"].split())
        return f"{group}={m['option']}: no such option in config group {group} (available: {options})"
    if m := _BAD_TYPE.search(text):
        kind = m["type"] or m["kind"]
        return f"{m['key']}: must be {_TYPE_WORDS.get(kind, kind)}, got {m['value']!r}"
    if _BAD_SYNTAX.search(text) or "LexerNoViableAltException" in text or "Error parsing override" in text:
        arg = _unparsable_override(sys.argv[1:])
        if arg is not None:
            detail = text.split(" See https://hydra.cc", 1)[0]
            return f"{arg.split('=', 1)[0].lstrip('+~')}: cannot parse the override {arg!r} ({detail})"
    return text


def _unparsable_override(args: list[str]) -> str | None:
    """The first of ``args`` that Hydra's own override parser refuses (the one its message is about)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    for arg in args:
        if arg.startswith("-"):
            continue
        try:
            parser.parse_override(arg)
        except HydraException:  # OverrideParseException and the grammar's own errors
            return arg
    return None


_OS_ERRORS = ("PermissionError", "NotADirectoryError", "FileExistsError", "IsADirectoryError", "OSError", "FileNotFoundError")


def _hydra_message(held: str) -> str:
    """One line from what Hydra printed before any job started.

    A plain Hydra error (unknown key, bad override) is joined into one line. An
    exception Hydra raised while preparing the job (it prints a traceback) is
    reduced to its last line; an OSError there means the run dir cannot be written.
    """
    lines = [ln.strip() for ln in held.splitlines() if ln.strip() and "HYDRA_FULL_ERROR" not in ln]
    if not any(ln.startswith("Traceback (most recent call last)") for ln in lines):
        return _known_hydra_error(" ".join(lines))
    last = lines[-1] if lines else "unknown error"
    key = "hydra.sweep.dir" if ("-m" in sys.argv[1:] or "--multirun" in sys.argv[1:]) else "hydra.run.dir"
    if last.split(":", 1)[0] in _OS_ERRORS:
        return f"{key}: cannot create or write the run directory ({last})"
    if "Unable to configure handler 'file'" in last:  # Hydra's log file: the OS error is further up its traceback
        cause = next((ln for ln in reversed(lines) if ln.split(":", 1)[0] in _OS_ERRORS), last)
        return f"{key}: cannot write the run's log file ({cause})"
    return last


class _HydraErrors:
    """Collapse Hydra's own multi-line error report (raised before any job starts) into one line.

    stderr is held back until the first job starts; if Hydra exits with an error
    before that (an unknown group or key, a bad override, a run dir it cannot
    create), the held text becomes one ``dswarm: error:`` line and exit code 2.
    """

    def __init__(self) -> None:
        self.buffer: io.StringIO | None = None

    def _release(self) -> str:
        """Restore stderr; return what was held back (once)."""
        if self.buffer is None:
            return ""
        held, self.buffer = self.buffer.getvalue(), None
        sys.stderr = sys.__stderr__
        return held

    def job_started(self) -> None:
        """From the first job on, stderr passes straight through."""
        sys.__stderr__.write(self._release())

    @contextmanager
    def __call__(self) -> Iterator[None]:
        if full_error():
            yield
            return
        self.buffer = io.StringIO()
        sys.stderr = self.buffer
        try:
            yield
        except SystemExit as exit_:
            held = self._release()
            if held and exit_.code not in (0, None):
                fail(CONFIG_ERROR, _hydra_message(held))
            sys.stderr.write(held)
            raise
        finally:
            sys.stderr.write(self._release())


one_line_hydra_errors = _HydraErrors()
