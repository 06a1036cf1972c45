"""Tests of infae_kit.evaluation.plotting: reproducible bytes, locations, name checks."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from infae_kit.errors import ParameterError  # noqa: E402
from infae_kit.evaluation.plotting import save_figure, set_theme  # noqa: E402


@pytest.fixture
def figure():
    set_theme()
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([1, 10, 100], [0.1, 0.3, 0.35], marker="o", label="∞-AE")
    ax.set_xscale("log")
    ax.set_xlabel("# users")
    ax.set_ylabel("HR@10")
    ax.legend()
    yield fig
    plt.close(fig)


def test_saves_are_byte_identical(tmp_path, figure):
    formats = ("png", "pdf", "svg")
    first = save_figure(figure, "fig_test", figures_dir=tmp_path / "a", formats=formats)
    second = save_figure(figure, "fig_test", figures_dir=tmp_path / "b", formats=formats)
    assert [p.name for p in first] == ["fig_test.png", "fig_test.pdf", "fig_test.svg"]
    for a, b in zip(first, second):
        assert a.read_bytes() == b.read_bytes(), a.name
    assert b"Matplotlib" not in first[0].read_bytes()  # no software version in PNG metadata
    pdf = first[1].read_bytes()
    assert b"CreationDate" not in pdf and b"Producer" not in pdf
    assert b"<dc:date>" not in first[2].read_bytes()


def test_default_folder_and_figure_stays_open(tmp_path, monkeypatch, figure):
    monkeypatch.setenv("INFAE_FIGURES_DIR", str(tmp_path / "figs"))
    paths = save_figure(figure, "fig1_sampling_ml-1m")
    assert paths == [tmp_path / "figs" / "fig1_sampling_ml-1m.png"]
    assert paths[0].stat().st_size > 0
    assert plt.fignum_exists(figure.number)
    save_figure(figure, "closing", figures_dir=tmp_path, close=True)
    assert not plt.fignum_exists(figure.number)


@pytest.mark.parametrize("name", ["", "a/b", "../up", ".hidden", "fig.png", "fig.PDF", "a\\b", None])
def test_bad_names(tmp_path, figure, name):
    with pytest.raises(ParameterError, match="name"):
        save_figure(figure, name, figures_dir=tmp_path)
    assert not list(tmp_path.iterdir())


def test_bad_formats_and_dpi(tmp_path, figure):
    with pytest.raises(ParameterError, match="format"):
        save_figure(figure, "f", figures_dir=tmp_path, formats=("jpg",))
    with pytest.raises(ParameterError, match="dpi"):
        save_figure(figure, "f", figures_dir=tmp_path, dpi=0)
    with pytest.raises(ParameterError, match="Figure"):
        save_figure("not a figure", "f", figures_dir=tmp_path)


def test_plot_degree_distributions(tmp_path):
    import numpy as np
    import scipy.sparse as sp

    from infae_kit.evaluation.plotting import plot_degree_distributions

    small = sp.random(300, 80, density=0.05, format="csr", random_state=0)
    small.data[:] = 1
    fig = plot_degree_distributions({"small": small, "small ⊗ 1": sp.csr_matrix(sp.kron(np.ones((3, 2)), small))},
                                    title="degrees")
    users, items = fig.axes[:2]
    assert users.get_xscale() == "log" and users.get_yscale() == "log"
    lines = users.get_lines()
    assert [line.get_label() for line in lines] == ["small", "small ⊗ 1"]
    # normalised by the mean degree, a Kronecker product by a matrix of ones draws the same curve
    np.testing.assert_allclose(lines[0].get_xdata(), lines[1].get_xdata())
    np.testing.assert_allclose(lines[0].get_ydata(), lines[1].get_ydata())
    assert items.get_lines()[0].get_ydata()[0] == 1.0
    assert save_figure(fig, "degrees", tmp_path, close=True)[0].is_file()
    with pytest.raises(ParameterError):
        plot_degree_distributions({})
