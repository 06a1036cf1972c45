"""Atomic writes keep the umask's permissions; progress bars end complete after an early stop."""

from __future__ import annotations

import os
import stat
from unittest import mock

import pytest

from infae_kit import io_utils
from infae_kit.data.download import fetch_file


@pytest.fixture()
def umask_022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_get_the_umask_mode(tmp_path, mask, expected):
    old = os.umask(mask)
    try:
        assert io_utils.new_file_mode() == expected
        json_path = io_utils.atomic_write_json(tmp_path / "results" / "r.json", {"a": 1})
        png_path = io_utils.atomic_write_bytes(tmp_path / "fig.png", b"\x89PNG")
    finally:
        os.umask(old)
    assert _mode(json_path) == expected and _mode(png_path) == expected
    assert [p.name for p in (tmp_path / "results").iterdir()] == ["r.json"]  # no temporary file left


def test_results_figures_and_downloads_are_readable_by_others(tmp_path, umask_022):
    """What notebooks write (result JSON, figures) and what the download cache holds: 0644 under umask 022, as
    `open(path, "w")` would create them (mkstemp's own 0600 made them private)."""
    from infae_kit.evaluation.results import write_results

    result = write_results(tmp_path, "02_closed_form_fit", "magazine", parameters={"seed": 42},
                           metrics={"infae": {"test": {"HR@10": 25.1}}}, timings_s={"load": 0.1})
    assert _mode(result) == 0o644
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from infae_kit.evaluation.plotting import save_figure

    fig = plt.figure()
    figures = save_figure(fig, "modes", figures_dir=tmp_path / "figures")
    plt.close(fig)
    assert figures and all(_mode(p) == 0o644 for p in figures)
    source = tmp_path / "source.bin"
    source.write_bytes(b"ratings\n")
    cached = fetch_file(source.as_uri(), tmp_path / "cache" / "ratings.bin", None)
    assert _mode(cached) == 0o644



@pytest.fixture()
def notebook_tqdm():
    """tqdm.auto as inside a Jupyter kernel, with IPython's display recorded instead of sent to a front end."""
    pytest.importorskip("ipywidgets")
    import IPython.display
    import tqdm.auto
    import tqdm.notebook

    class AutoNotebookTqdm(tqdm.notebook.tqdm):
        pass

    shown = []

    class Handle:
        def update(self, obj, raw=False):
            shown.append(("update", obj, raw))

    def display(obj, display_id=None, **kwargs):
        shown.append(("display", type(obj).__name__, display_id))
        return Handle()

    with mock.patch.object(tqdm.auto, "tqdm", AutoNotebookTqdm), mock.patch.object(IPython.display, "display",
                                                                                   display):
        yield shown


def test_raw_tqdm_marks_an_early_stop_as_failed(notebook_tqdm):
    """What the kit's bars fix: `break` out of a tqdm notebook loop turns the bar red ('danger')."""
    import tqdm.auto

    bar = tqdm.auto.tqdm(range(100), leave=False, display=False)
    for epoch in bar:
        if epoch == 98:
            break
    bar.close()
    assert bar.container.children[1].bar_style == "danger"


def test_progress_bar_ends_complete_after_a_break_and_leaves_text(notebook_tqdm):
    bar = io_utils.progress_bar(range(1, 101), desc="mf epochs")
    for epoch in bar:
        if epoch == 99:  # early stopping at the 99th of 100 epochs
            break
    widget = bar._bar.container
    bar.finish()
    assert widget.children[1].bar_style != "danger"
    assert widget.layout.visibility == "hidden"  # the live widget is gone ...
    kind, name, display_id = notebook_tqdm[0]
    assert (kind, name, display_id) == ("display", "TqdmHBox", True)
    kind, bundle, raw = notebook_tqdm[-1]  # ... and its output became one line of text: no widget to restore
    assert kind == "update" and raw and set(bundle) == {"text/plain"}
    assert bundle["text/plain"].startswith("mf epochs: 100%") and "99/99" in bundle["text/plain"]


def test_progress_bar_failure_stays_visible_as_failed(notebook_tqdm):
    with pytest.raises(ZeroDivisionError):
        with io_utils.progress_bar(total=10, desc="AR-CF epochs") as bar:
            bar.update(3)
            1 / 0
    assert bar._bar.container.children[1].bar_style == "danger"
    line = notebook_tqdm[-1][1]["text/plain"]
    assert "3/10" in line and line.endswith("(stopped by an error)")


def test_progress_bar_in_a_terminal_counts_and_clears(capsys):
    bar = io_utils.progress_bar(["a", "b", "c"], desc="λ grid")
    seen = list(bar)
    bar.finish()
    assert seen == ["a", "b", "c"] and bar.n == 3 and bar.total == 3
    quiet = io_utils.progress_bar(range(3), enabled=False)
    assert list(quiet) == [0, 1, 2]
    quiet.finish()
    with pytest.raises(TypeError, match="update"):
        iter(io_utils.progress_bar(total=3)).__next__()
