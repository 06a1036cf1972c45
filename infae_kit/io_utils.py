"""Atomic writes (a result file is either the old version or the complete new one, never half-written, and it
gets the permissions of the user's umask like any other new file), the memory still available to the process
(checked before large allocations), and the kit's progress bars."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator

__all__ = [
    "new_file_mode",
    "make_temp_file",
    "atomic_write_stream",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "available_memory_bytes",
    "peak_rss_bytes",
    "ProgressBar",
    "progress_bar",
]


def _current_umask() -> int:
    """The process umask, read without changing it where Linux allows (``/proc/self/status``)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # older kernels and other systems: read it by setting it, then restore it at once
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """Permission bits a plain ``open(path, "w")`` would give a new file now: ``0o666`` minus the umask."""
    return 0o666 & ~_current_umask()


def make_temp_file(folder: str | os.PathLike, prefix: str, suffix: str) -> tuple[int, str]:
    """``tempfile.mkstemp`` in ``folder``, but with :func:`new_file_mode` instead of mkstemp's private ``0o600``.

    The file is renamed onto its final name once complete, so it must carry the mode the final file should
    have (a result or cache that other users of a shared folder can read when the umask allows it).

    Returns:
        ``(fd, path)`` as ``tempfile.mkstemp``: an open file descriptor and the temporary file's path.
    """
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)
    try:
        os.fchmod(fd, new_file_mode())
    except BaseException:
        os.close(fd)
        os.unlink(name)
        raise
    return fd, name


def atomic_write_stream(path: str | os.PathLike, write: Callable[[BinaryIO], Any]) -> Path:
    """Let ``write(fh)`` fill a temporary file in the folder of ``path``, then ``os.replace`` it onto ``path``.

    For large outputs (``np.savez(fh, ...)`` of a cached dataset) that should not be built in memory first.
    If ``write`` raises, the temporary file is removed and ``path`` is left as it was. The file gets the
    umask's permissions (:func:`new_file_mode`), as a plain ``open(path, "wb")`` would.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = make_temp_file(path.parent, f".{path.name}.", ".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    return atomic_write_stream(path, lambda fh: fh.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically write UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def _to_jsonable(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, dict):
        return {str(k): _to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Atomically write ``obj`` as indented JSON (numpy scalars and arrays converted)."""
    return atomic_write_text(path, json.dumps(_to_jsonable(obj), indent=2, sort_keys=False, allow_nan=False) + "\n")


def peak_rss_bytes() -> int:
    """Peak resident memory of this process: ``VmHWM`` of /proc/self/status (Linux), else ``ru_maxrss``.

    ``VmHWM`` belongs to the running program; ``ru_maxrss`` survives ``exec`` on Linux, so a child started from a
    large process (a notebook kernel) would report its parent's peak.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def available_memory_bytes() -> int:
    """Memory this process may still allocate: ``MemAvailable`` of /proc/meminfo, else physical memory."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 1 << 62


def _is_notebook_tqdm(cls: type) -> bool:
    """Whether ``tqdm.auto`` chose Jupyter's widget bar (it does inside a kernel with ipywidgets)."""
    try:
        from tqdm.notebook import tqdm as notebook_tqdm
    except ImportError:  # pragma: no cover - tqdm without its notebook module
        return False
    return issubclass(cls, notebook_tqdm)


class ProgressBar:
    """A tqdm bar (a widget in Jupyter, text in a terminal) that ends well when its loop stops early.

    tqdm marks a bar as failed (red in Jupyter) when it is closed short of its total, and a ``break`` out of
    ``for x in tqdm(...)`` does exactly that. Here :meth:`finish` (or leaving a ``with`` block normally) is
    the end of the work: the total becomes the steps done, so the bar ends complete (``100%``), and
    :meth:`fail` (or an exception out of a ``with`` block) marks it as stopped by an error.

    In Jupyter the widget lives only while the loop runs: at the end its output is replaced by the bar's final
    line as plain text, so a saved notebook holds no widget whose state a reopened notebook would need ("Error
    displaying widget: model not found"). In a terminal the text bar is cleared at the end.

    Iterating over the bar (when built with an iterable) counts one step per item as the item starts, without
    tqdm's own generator, whose clean-up after a ``break`` marks the bar as failed; ``update``, ``set_postfix``
    and ``set_postfix_str`` go to the tqdm bar.

    Example::

        bar = progress_bar(range(1, epochs + 1), desc="MF epochs", enabled=progress)
        for epoch in bar:
            ...
            if stale >= patience:
                break
        bar.finish()
    """

    def __init__(self, iterable: Iterable | None = None, *, total: int | None = None, desc: str = "",
                 enabled: bool = True, initial: int = 0, unit: str = "it", unit_scale: bool = False) -> None:
        from tqdm.auto import tqdm

        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self._iterable = iterable
        self._display = None  # the notebook output holding the widget, replaced by text at the end
        options = dict(total=total, desc=desc, disable=not enabled, leave=False, initial=initial, unit=unit,
                       unit_scale=unit_scale)
        if enabled and _is_notebook_tqdm(tqdm):
            from IPython.display import display

            self._bar = tqdm(**options, display=False)
            self._display = display(self._bar.container, display_id=True)
        else:
            self._bar = tqdm(**options)
        self._ended = False

    @property
    def n(self) -> int:
        """Steps counted so far."""
        return self._bar.n

    @property
    def total(self) -> int | None:
        """Steps announced (``None`` when unknown)."""
        return self._bar.total

    def update(self, n: int = 1) -> None:
        """Count ``n`` more steps."""
        self._bar.update(n)

    def set_postfix(self, **values: Any) -> None:
        """Show ``name=value`` pairs after the bar."""
        self._bar.set_postfix(**values)

    def set_postfix_str(self, text: str) -> None:
        """Show ``text`` after the bar."""
        self._bar.set_postfix_str(text)

    def __iter__(self) -> Iterator:
        if self._iterable is None:
            raise TypeError("this ProgressBar was built without an iterable; count with update() instead")
        for item in self._iterable:
            self._bar.update(1)  # counted when it starts: a break after its work leaves it counted
            yield item

    def _end(self, suffix: str = "") -> None:
        if self._ended or self._bar.disable:
            self._ended = True
            return
        self._ended = True
        final_line = str(self._bar) + suffix
        self._bar.close()
        if self._display is not None:
            self._display.update({"text/plain": final_line}, raw=True)

    def finish(self) -> None:
        """End the bar as complete at the steps done (an early stop is a normal end)."""
        if not self._bar.disable:
            self._bar.total = self._bar.n
            self._bar.refresh()
        self._end()

    def fail(self) -> None:
        """End the bar as stopped by an error (red in Jupyter while the widget lives)."""
        if not self._ended and not self._bar.disable and self._display is not None:
            self._bar.disp(bar_style="danger")
        self._end(" (stopped by an error)")

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finish()
        else:
            self.fail()


def progress_bar(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "",
                 enabled: bool = True, initial: int = 0, unit: str = "it", unit_scale: bool = False) -> ProgressBar:
    """The kit's progress bar (see :class:`ProgressBar`); call ``finish()`` when the loop is over.

    Args:
        iterable: items to loop over (``for x in bar``), or ``None`` to count with ``bar.update()``.
        total: number of steps (default: ``len(iterable)`` when it has one).
        desc: label shown before the bar.
        enabled: ``False`` shows nothing (the loop runs the same).
        initial: steps already done (a resumed run).
        unit, unit_scale: as tqdm's (``unit="B", unit_scale=True`` for bytes).
    """
    return ProgressBar(iterable, total=total, desc=desc, enabled=enabled, initial=initial, unit=unit,
                       unit_scale=unit_scale)
