# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: kernelspec,jupytext
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 08 · ∞-AE at scale: landmark ∞-AE against the paper's user sampling
#
# Exact ∞-AE is kernel ridge regression over a users × users NTK Gram: memory grows as users², and past a few
# tens of thousands of users it does not fit. The paper's Netflix row (Table 1, marked \*) therefore trains ∞-AE
# on 25,000 randomly sampled users. **Landmark ∞-AE** (`infae_kit.models.landmark`) keeps every user as a
# regression target and restricts only the kernel basis to m landmark users (Nyström / subset-of-regressors):
#
# $$\beta = (K_{LU}K_{UL} + \lambda' K_{LL})^{-1} K_{LU} X, \qquad \hat y(x) = \mathbb K(x, L)\,\beta,
#   \qquad \lambda' = \lambda\,\tfrac{\operatorname{tr} K_{UU}}{U},$$
#
# accumulated over blocks of users (memory $O(m^2 + m\cdot\text{items})$, never $U\times U$), exact when the
# landmarks are all users.
#
# **Claims tested.** (a) At equal m, landmark ∞-AE beats ∞-AE trained on m sampled users on every metric and
# approaches exact ∞-AE as m grows (which landmark rule is best is measured); (b) on `dataset`, the paper's
# Netflix protocol table: ∞-AE on `user_budget` sampled users, landmark ∞-AE on all users, EASE, exact ∞-AE
# where it fits; (c) landmark ∞-AE's time grows about linearly in users at fixed m, exact ∞-AE's faster.
#
# With `preset = "auto"` the notebook runs the `full` preset, except under the test suite
# (`INFAE_NOTEBOOK_PRESET=ci`), which runs a CI-sized one (three small m, two user counts: about a minute).

# %% tags=["parameters"]
dataset = "ml-100k"       # any name from infae_kit.data.list_datasets()
preset = "auto"           # auto, full or ci (see above)
landmarks = ""            # m values, comma separated (empty: from the preset); the largest is used in (b)
selection = ""            # landmark rules, comma separated (empty: uniform,kmeans++,leverage)
user_budget = 0           # sampled users of the paper's protocol in (b) (0: from the preset, 25000 in full)
block_users = 8192        # users per streamed block
eval_users = 0            # evaluate on a seeded sample of this many users (0: all users)
seed = 42                 # split seed of raw datasets and seed of the landmarks and of the user samples
output_dir = ""           # results JSON: {output_dir}/08_scale-{dataset}.json (empty: the repo runs/ folder)
figures_dir = ""          # figures are saved here (empty: the repo figures/ folder)

# %%
import os
import platform
import time

import jax
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

import infae_kit
from infae_kit.data import dataset_statistics, load_dataset
from infae_kit.evaluation.plotting import save_figure, set_theme
from infae_kit.evaluation.protocol import metric_names
from infae_kit.evaluation.results import PAPER_TABLE1, write_results
from infae_kit.evaluation.selection import tune_and_evaluate
from infae_kit.experiments.scale import exact_fits, quality_against_landmarks
from infae_kit.experiments.scale_figures import plot_cost_against_users, plot_quality_against_landmarks
from infae_kit.io_utils import peak_rss_bytes
from infae_kit.models.baselines import EASE
from infae_kit.models.infinite_ae import PAPER_LAMBDA_GRID, tune_and_evaluate_infinite_ae
from infae_kit.models.landmark_basis import RECOMMENDED_SELECTION
from infae_kit.paths import figures_dir as default_figures_dir, output_path, runs_dir
from infae_kit.scale.cost import cost_against_users, fitted_exponent

set_theme()
print(f"python {platform.python_version()} · jax {jax.__version__} ({jax.default_backend()}) · "
      f"numpy {np.__version__} · infae_kit {infae_kit.__version__}")
PRESETS = {
    "full": {"landmarks": "250,500,1000,2000", "user_budget": 25_000, "cost_users": None},
    "ci": {"landmarks": "50,100,200", "user_budget": 200, "cost_users": [300, 1000]},
}
resolved = os.environ.get("INFAE_NOTEBOOK_PRESET", "full") if preset == "auto" else preset
if resolved not in PRESETS:
    raise ValueError(f"preset must be auto, full or ci, got {preset!r}")
config = PRESETS[resolved]
ms = [int(x) for x in (landmarks or config["landmarks"]).split(",")]
rules = [x.strip() for x in (selection or "uniform,kmeans++,leverage").split(",")]
budget = int(user_budget) or config["user_budget"]
n_eval = int(eval_users) or None
out_dir = output_path(output_dir, runs_dir())
fig_dir = output_path(figures_dir, default_figures_dir())
t_start = time.perf_counter()
print(f"preset {resolved!r}: m = {ms}, rules {rules}, user budget {budget:,}")

# %% [markdown]
# ## 1. Data

# %%
t0 = time.perf_counter()
data = load_dataset(dataset, seed=seed)
t_load = time.perf_counter() - t0
stats = dataset_statistics(data)
ms = sorted({min(m, data.n_users) for m in ms})
print(f"{dataset}: {data.n_users:,} users × {data.n_items:,} items, loaded in {t_load:.1f} s")
{k: stats[k] for k in ("users", "items", "interactions", "sparsity") if k in stats}

# %% [markdown]
# ## 2. Exact ∞-AE, where it fits
#
# The reference: kernel ridge regression over all users (λ picked on validation HR@100). Its memory guard
# decides whether it runs here.

# %%
t0 = time.perf_counter()
fits = exact_fits(data.n_users, data.n_items)
exact = tune_and_evaluate_infinite_ae(data, seed=seed, progress=False) if fits else None
t_exact = time.perf_counter() - t0
display(Markdown(f"Exact ∞-AE on all {data.n_users:,} users: " + (
    f"λ = {exact.best_value:g}, test NDCG@10 **{exact.test_metrics['NDCG@10']:.2f}**, "
    f"HR@10 {exact.test_metrics['HR@10']:.2f} ({t_exact:.0f} s)." if fits else
    "does not fit in this machine's memory (the regime landmark ∞-AE is for).")))

# %% [markdown]
# ## 3. (a) Quality against m
#
# For each m: landmark ∞-AE with each selection rule — `uniform` (seeded), `kmeans++` (D² seeding in the NTK
# feature space on a candidate pool), `leverage` (approximate ridge-leverage scores) — with **every** user as a
# target, next to ∞-AE trained on m sampled users (the paper's protocol). λ is picked on validation for each.

# %%
t0 = time.perf_counter()
quality = quality_against_landmarks(data, ms, rules, block_users=block_users, seed=seed, eval_users=n_eval,
                                    exact_report=exact)
t_quality = time.perf_counter() - t0
shown = [n for n in metric_names((10, 100)) if n != "PSP@100"]
lines = ["| model | rule | m | λ | " + " | ".join(shown) + " |", "|---|---|---:|---:|" + "---:|" * len(shown)]
for r in quality:
    cells = [f"{r['test'][n]:.4f}" if n == "AUC" else f"{r['test'][n]:.2f}" for n in shown]
    lines.append(f"| {r['model']} | {r['selection']} | {r['m']:,} | {r['best_lambda']:g} | " + " | ".join(cells) + " |")
display(Markdown("\n".join(lines)))

# %%
fig = plot_quality_against_landmarks(quality, shown, title=f"{dataset}: landmark ∞-AE vs ∞-AE on m sampled users")
save_figure(fig, f"08_quality_vs_landmarks-{dataset}", figures_dir=fig_dir)
plt.show()

# %%
by = {(r["model"], r["selection"], r["m"]): r["test"] for r in quality}
m_top = ms[-1]
best_rule = {m: max(rules, key=lambda rule: by[("landmark", rule, m)]["NDCG@10"]) for m in ms}
beats = {m: {rule: [n for n in shown if by[("landmark", rule, m)][n] <= by[("sampled", "uniform", m)][n]]
             for rule in rules} for m in ms}
text = [f"- best rule by test NDCG@10: " + ", ".join(f"m = {m:,}: **{best_rule[m]}**" for m in ms) + "."]
for m in ms:
    losing = {rule: v for rule, v in beats[m].items() if v}
    text.append(f"- m = {m:,}: landmark ∞-AE ahead of ∞-AE on {m:,} sampled users on every metric for "
                + (", ".join(r for r in rules if r not in losing) or "no rule")
                + ("" if not losing else f" (not on {losing})") + ".")
if exact is not None:
    for rule in rules:
        ratio = 100 * by[("landmark", rule, m_top)]["NDCG@10"] / exact.test_metrics["NDCG@10"]
        text.append(f"- m = {m_top:,}, {rule}: {ratio:.1f} % of exact ∞-AE's test NDCG@10 "
                    f"(∞-AE on {m_top:,} sampled users: "
                    f"{100 * by[('sampled', 'uniform', m_top)]['NDCG@10'] / exact.test_metrics['NDCG@10']:.1f} %).")
display(Markdown("\n".join(text)))

# %% [markdown]
# ## 4. (b) The Netflix protocol table on this dataset
#
# The paper's Netflix row trains ∞-AE on 25,000 sampled users (5.4 % of Netflix). Here: ∞-AE on `user_budget`
# sampled users, landmark ∞-AE (largest m, the kit's recommended rule) with **all** users as targets, EASE on all
# users (its items × items closed form fits), and exact ∞-AE where it fits. When `user_budget` ≥ the number of
# users, the sampled run is exact ∞-AE.

# %%
t0 = time.perf_counter()
sampled = tune_and_evaluate_infinite_ae(data, user_budget=min(budget, data.n_users), seed=seed, progress=False)
t_sampled = time.perf_counter() - t0
landmark_rule = RECOMMENDED_SELECTION if RECOMMENDED_SELECTION in rules else rules[0]
landmark_row = next(r for r in quality if r["model"] == "landmark" and r["m"] == m_top and r["selection"] == landmark_rule)
t0 = time.perf_counter()
ease = tune_and_evaluate(lambda lam: EASE(lam), (1.0, 10.0, 100.0, 1000.0, 10000.0), data, desc="EASE λ grid")
t_ease = time.perf_counter() - t0
table = {f"∞-AE, {min(budget, data.n_users):,} sampled users": sampled.test_metrics,
         f"landmark ∞-AE, m = {m_top:,} ({landmark_rule}), all users": landmark_row["test"],
         "EASE, all users": ease.test_metrics}
if exact is not None:
    table["exact ∞-AE, all users"] = exact.test_metrics
if dataset in PAPER_TABLE1 and "infae" in PAPER_TABLE1[dataset]:
    table["paper: ∞-AE (Table 1)"] = PAPER_TABLE1[dataset]["infae"]
lines = ["| model | " + " | ".join(shown) + " |", "|---|" + "---:|" * len(shown)]
for name, m in table.items():
    lines.append(f"| {name} | " + " | ".join("—" if n not in m else f"{m[n]:.4f}" if n == "AUC" else f"{m[n]:.2f}"
                                             for n in shown) + " |")
display(Markdown("\n".join(lines)))
gain = {n: landmark_row["test"][n] - sampled.test_metrics[n] for n in ("HR@10", "NDCG@10")}
display(Markdown(f"Landmark ∞-AE minus ∞-AE on sampled users: HR@10 {gain['HR@10']:+.2f}, "
                 f"NDCG@10 {gain['NDCG@10']:+.2f} (points)."))

# %% [markdown]
# ## 5. (c) Time and peak memory against the number of users
#
# Seeded subsets of growing size, each fitted in a fresh process (so that its peak RSS is its own) after a
# warm-up fit that compiles the kernels: landmark ∞-AE at m = the largest m above, exact ∞-AE until its memory
# guard refuses. The exponent k of time ∝ users^k is fitted on log–log axes. Timings on a shared machine
# vary with its load.

# %%
if config["cost_users"] is None:
    sizes = sorted({min(data.n_users, int(1000 * 2**k)) for k in range(0, 12) if 1000 * 2 ** (k - 1) < data.n_users})
else:
    sizes = sorted({min(data.n_users, u) for u in config["cost_users"]})
t0 = time.perf_counter()
cost = cost_against_users(dataset, sizes, landmarks=m_top, block_users=block_users, seed=seed)
t_cost = time.perf_counter() - t0
exponents = {model: fitted_exponent(cost, model) for model in ("landmark", "exact")}
fig = plot_cost_against_users(cost, exponents, title=f"{dataset}: fit cost against users (m = {m_top:,})")
save_figure(fig, f"08_cost_vs_users-{dataset}", figures_dir=fig_dir)
plt.show()
display(Markdown("Fitted exponents: " + ", ".join(
    f"{model} ∞-AE k = **{k:.2f}**" if k is not None else f"{model} ∞-AE: fewer than two sizes"
    for model, k in exponents.items()) + f" (sizes {', '.join(f'{s:,}' for s in sizes)})."))

# %% [markdown]
# ## 6. Record the results
#
# `{output_dir}/08_scale-{dataset}.json`: models `infae_landmark` (largest m, recommended rule), `infae_sampled`
# (`user_budget` sampled users), `infae` (exact, where it fits) and `ease`, with the sweeps of (a) and (c).

# %%
peak_rss_gb = peak_rss_bytes() / 1e9
metrics = {"infae_landmark": {"val": landmark_row["val"], "test": landmark_row["test"]},
           "infae_sampled": {"val": sampled.val_metrics[sampled.best_value], "test": sampled.test_metrics},
           "ease": {"val": ease.val_metrics[ease.best_value], "test": ease.test_metrics}}
if exact is not None:
    metrics["infae"] = {"val": exact.val_metrics[exact.best_value], "test": exact.test_metrics}
path = write_results(
    out_dir, "08_scale", dataset,
    parameters=dict(dataset=dataset, preset=resolved, landmarks=",".join(map(str, ms)), selection=",".join(rules),
                    user_budget=budget, block_users=block_users, eval_users=eval_users, seed=seed),
    metrics=metrics,
    timings_s={"load": t_load, "exact": t_exact, "quality_sweep": t_quality, "sampled": t_sampled, "ease": t_ease,
               "cost_sweep": t_cost, "total": time.perf_counter() - t_start},
    extra={"n_users_trained": {"infae_landmark": data.n_users, "infae_sampled": min(budget, data.n_users),
                               "infae": data.n_users if exact is not None else 0, "ease": data.n_users},
           "landmarks": m_top, "landmark_selection": landmark_rule, "peak_rss_gb": peak_rss_gb,
           "best_rule_by_m": {str(m): r for m, r in best_rule.items()}, "quality_sweep": quality,
           "cost_sweep": cost, "cost_exponents": exponents, "backend": jax.default_backend()},
)
print(f"results written to {path} (peak RSS of this kernel {peak_rss_gb:.2f} GB)")

# %% [markdown]
# ## References
# - N. Sachdeva, M. P. Dhaliwal, C.-J. Wu, J. McAuley. *Infinite Recommendation Networks: A Data-Centric
#   Approach.* NeurIPS 2022.
# - C. Williams, M. Seeger. *Using the Nyström Method to Speed Up Kernel Machines.* NeurIPS 2001.
# - A. Rudi, L. Carratino, L. Rosasco. *FALKON: An Optimal Large Scale Kernel Method.* NeurIPS 2017.
# - A. Alaoui, M. W. Mahoney. *Fast Randomized Kernel Ridge Regression with Statistical Guarantees.* NeurIPS 2015.
# - D. Arthur, S. Vassilvitskii. *k-means++: The Advantages of Careful Seeding.* SODA 2007.
# - H. Steck. *Embarrassingly Shallow Autoencoders for Sparse Data.* WWW 2019.
