"""Sharded landmark ∞-AE: 4 forced host devices and 2 local processes give the single-device answer; bad input
and a process that dies mid-run stop with clear errors and write nothing."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from infae_kit.data import build_rec_dataset, make_synthetic
from infae_kit.models.landmark import LandmarkInfiniteAE, tune_and_evaluate_landmark
from infae_kit.scale.cli import EXIT_BAD_INPUT, FAULT_ENV
from infae_kit.scale.rows_cache import open_user_rows, write_user_rows
from infae_kit.scale.sharding import process_share

ROOT = Path(__file__).resolve().parent.parent
SYNTH = ["--dataset", "synthetic", "--dataset-option", "n_users=600", "--dataset-option", "n_items=150"]
FIT = ["--landmarks", "100", "--selection", "uniform", "--block-users", "64", "--lambdas", "1,5,20", "--quiet"]


def _env(devices: int = 1) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    env.pop(FAULT_ENV, None)
    return env


def _cli(args, tmp_path, devices=1, env_extra=None, timeout=600):
    env = _env(devices)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "infae_kit.scale", "fit", *args, "--cache-dir",
                           str(tmp_path / "cache")], env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def data():
    return build_rec_dataset(make_synthetic(n_users=600, n_items=150, seed=42), name="synthetic", seed=42)


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """The CLI on one process and one device: the reference answer."""
    tmp = tmp_path_factory.mktemp("single")
    run = _cli([*SYNTH, *FIT, "--output", str(tmp / "one.json"), "--save-model", str(tmp / "one.npz")], tmp)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads((tmp / "one.json").read_text()), LandmarkInfiniteAE.load(tmp / "one.npz")


def test_process_shares_are_whole_blocks():
    shares = [process_share(1000, 3, p, block=64) for p in range(3)]
    assert shares[0][0] == 0 and shares[-1][1] == 1000
    assert all(a[1] == b[0] for a, b in zip(shares, shares[1:]))
    assert all(start % 64 == 0 for start, _ in shares)


def test_single_process_cli_writes_the_results_contract(single, data):

    record, model = single
    assert set(record["metrics"]) == {"infae_landmark"} and set(record["metrics"]["infae_landmark"]) == {"val", "test"}
    assert record["timings_s"]["load"] > 0 and record["timings_s"]["total"] > 0
    assert record["landmarks"] == 100 and record["n_users_trained"] == data.n_users == 600
    assert record["num_processes"] == 1 and record["peak_rss_gb"] > 0
    # the in-process API gives the same numbers as the CLI
    rep = tune_and_evaluate_landmark(data, landmarks=100, selection="uniform", lambdas=(1, 5, 20), block_users=64,
                                     progress=False)
    assert rep.best_value == record["best_lambda"]
    for name, value in rep.test_metrics.items():
        assert record["metrics"]["infae_landmark"]["test"][name] == pytest.approx(value, rel=1e-9), name
    assert model.basis_.m == 100


def test_four_forced_devices_give_the_single_device_answer(data, tmp_path):
    script = textwrap.dedent(f"""
        import json, numpy as np, jax
        from infae_kit.data import build_rec_dataset, make_synthetic
        from infae_kit.models.landmark import tune_and_evaluate_landmark
        from infae_kit.scale.sharding import ShardedEngine
        assert len(jax.devices()) == 4, jax.devices()
        data = build_rec_dataset(make_synthetic(n_users=600, n_items=150, seed=42), name="synthetic", seed=42)
        engine = ShardedEngine()
        rep = tune_and_evaluate_landmark(data, landmarks=100, selection="uniform", lambdas=(1, 5, 20),
                                         block_users=64, engine=engine, progress=False)
        np.save(r"{tmp_path / 'scores.npy'}", rep.model.predict(data.train_val()))
        json.dump({{"metrics": rep.test_metrics, "val": {{str(k): v for k, v in rep.val_metrics.items()}},
                   "devices": engine.n_devices, "steps_per_block": engine.blocks_per_step}},
                  open(r"{tmp_path / 'four.json'}", "w"))
    """)
    run = subprocess.run([sys.executable, "-c", script], env=_env(4), capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    four = json.loads((tmp_path / "four.json").read_text())
    assert four["devices"] == 4 and four["steps_per_block"] == 4
    ref = tune_and_evaluate_landmark(data, landmarks=100, selection="uniform", lambdas=(1, 5, 20), block_users=64,
                                     progress=False)
    assert four["metrics"] == ref.test_metrics  # metrics equal
    assert four["val"] == {str(k): v for k, v in ref.val_metrics.items()}
    scores, ref_scores = np.load(tmp_path / "scores.npy"), ref.model.predict(data.train_val())
    np.testing.assert_allclose(scores, ref_scores, rtol=0, atol=1e-5)


def test_two_local_processes_give_the_single_process_answer(single, data, tmp_path):
    record, model = single
    run = _cli([*SYNTH, *FIT, "--output", str(tmp_path / "two.json"), "--save-model", str(tmp_path / "two.npz"),
                "--local-processes", "2", "--timeout", "120"], tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    two = json.loads((tmp_path / "two.json").read_text())
    assert two["num_processes"] == 2 and len(two["peak_rss_gb_per_process"]) == 2
    assert two["metrics"] == record["metrics"]  # identical metrics, val and test
    assert two["best_lambda"] == record["best_lambda"]
    other = LandmarkInfiniteAE.load(tmp_path / "two.npz")
    ctx = data.train_val()
    np.testing.assert_allclose(other.predict(ctx), model.predict(ctx), rtol=0, atol=1e-5)


@pytest.mark.parametrize("victim", [1, 0])
def test_a_process_killed_mid_run_stops_the_others_and_nothing_is_written(tmp_path, victim):
    out = tmp_path / "killed.json"
    run = _cli([*SYNTH, *FIT, "--output", str(out), "--local-processes", "2", "--timeout", "30"], tmp_path,
               env_extra={FAULT_ENV: f"{victim}:3"}, timeout=400)
    assert run.returncode != 0
    assert f"process {victim} of 2 was killed by SIGKILL" in run.stderr and "no results were written" in run.stderr
    if victim == 1:  # the survivor names the cause itself (its collective lost its peer)
        assert "process 0 of 2 stopped:" in run.stderr
    assert not out.exists() and not list(tmp_path.glob("*.json")) and not list(tmp_path.glob(".scale-*"))


def test_a_saved_distillcf_summary_is_the_basis_from_the_command_line(data, tmp_path):
    """``--support DIR`` (a saved DISTILL-CF summary) gives the in-process ``support=`` answer."""
    import scipy.sparse as sp

    from infae_kit.distill import DistillConfig, DistillResult

    rng = np.random.default_rng(0)
    rows = sp.csr_matrix(rng.random((30, data.n_items)) * (rng.random((30, data.n_items)) < 0.1), dtype=np.float32)
    DistillResult(rows, 5.0, {"steps_run": 0}, DistillConfig(budget=30)).save(tmp_path / "summary")
    out = tmp_path / "distilled.json"
    run = _cli([*SYNTH, "--support", str(tmp_path / "summary"), "--block-users", "64", "--lambdas", "1,5,20",
                "--quiet", "--output", str(out)], tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    record = json.loads(out.read_text())
    assert record["selection"] == "distilled" and record["landmarks"] == 30
    rep = tune_and_evaluate_landmark(data, support=rows, lambdas=(1, 5, 20), block_users=64, progress=False)
    assert rep.best_value == record["best_lambda"]
    for name, value in rep.test_metrics.items():
        assert record["metrics"]["infae_landmark"]["test"][name] == pytest.approx(value, rel=1e-6), name
    wrong = _cli([*SYNTH, "--support", str(tmp_path), "--quiet", "--output", str(tmp_path / "r.json")], tmp_path)
    assert wrong.returncode == EXIT_BAD_INPUT and "has no support.npz" in wrong.stderr


@pytest.mark.parametrize("args,message", [
    (["--landmarks", "601"], "exceeds the 600 users"),
    (["--landmarks", "0"], "--landmarks must be at least 1"),
    (["--landmarks", "10", "--block-users", "64", "--selection", "uniform", "--landmarks-file", "{users}"],
     "user id(s) are not users of this dataset"),
    (["--landmarks", "10", "--num-processes", "2"], "needs --coordinator"),
    (["--landmarks", "10", "--select-users", "-5"], "--select-users must be ≥ 0"),
])
def test_bad_input_is_refused_with_the_fix(tmp_path, args, message):
    users = tmp_path / "users.txt"
    users.write_text("0\n1\nnot-a-user\n")
    args = [a.replace("{users}", str(users)) for a in args]
    run = _cli([*SYNTH, *args, "--output", str(tmp_path / "r.json"), "--quiet"], tmp_path)
    assert run.returncode == EXIT_BAD_INPUT, run.stderr[-2000:]
    assert message in run.stderr
    assert not (tmp_path / "r.json").exists()


def test_a_block_that_cannot_fit_names_what_would(data):
    from infae_kit.errors import MemoryBudgetError

    with pytest.raises(MemoryBudgetError, match=r"Use block_users=[\d,]+ with m=100"):
        tune_and_evaluate_landmark(data, landmarks=100, selection="uniform", block_users=10**7, progress=False,
                                   memory_limit_bytes=200 * 1024**2)


def test_rows_cache_reads_back_and_a_damaged_one_is_rebuilt(data, tmp_path):
    from infae_kit.scale.rows_cache import ensure_user_rows

    folder = write_user_rows(data, tmp_path / "c")
    cached = open_user_rows(folder)
    for name in ("data", "indices", "indptr"):  # views of the files, not copies: slicing reads only those rows
        array, chain = getattr(cached.train, name), []
        while array is not None:
            chain.append(type(array))
            array = getattr(array, "base", None)
        assert np.memmap in chain, (name, chain)
    assert (cached.train[100:200] != data.train[100:200]).nnz == 0 and (cached.test != data.test).nnz == 0
    np.testing.assert_array_equal(cached.auc_negatives(), data.auc_negatives(50, 42))
    (folder / "val_indices.npy").write_bytes(b"garbage")
    again = ensure_user_rows(folder, lambda: data)
    assert (again.val != data.val).nnz == 0
    assert len(list(tmp_path.glob("c.damaged-*"))) == 1
