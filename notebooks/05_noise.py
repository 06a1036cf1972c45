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
# # 05 · Noisy data: sampling it, distilling it, and what ∞-AE makes of it
#
# Reproduces **§5 "How robust are DISTILL-CF and ∞-AE to noise?"** — Figure 3 (and Figure 13 for every metric
# and budget) and Figure 4 (and Figure 14) — of *Infinite Recommendation Networks: A Data-Centric Approach*
# (Sachdeva et al., NeurIPS 2022) on one dataset.
#
# The experiment: add x % noise to the **train** set → sample (or distil) the noisy train data → train a model on
# the sample → evaluate on the original, **noise-free** test set.
#
# **Claims tested** (recorded at the end as holds / does not hold, with the numbers):
# 1. With noise, DISTILL-CF has the best noise : sampling : performance trade-off (the smallest drop of EASE
#    relative to clean full data), and its lead over the other samplers grows with the noise (Fig. 3).
# 2. At 5 % noise, EASE trained on a DISTILL-CF summary is at least as good as EASE trained on the full noisy
#    data — the paper's counter-intuitive finding (Fig. 4).
# 3. ∞-AE's lead over EASE, both trained on the full data, grows with the noise (Fig. 4).
#
# **Cost.** The cells are cached in `output_dir/sweep_cache`, shared with notebook 04 (the clean cells of the
# same budgets are not recomputed). Under the test suite (`INFAE_NOTEBOOK_PRESET=ci`) a CI-sized run.

# %% tags=["parameters"]
dataset = "magazine"      # any name from infae_kit.data.list_datasets()
validation = "paper"      # paper (the split as it is) or holdout (a validation item for users without one)
preset = "auto"           # auto, full or ci
noise_levels = ""         # percent of the catalogue flipped per user, comma separated (empty: from the preset)
budgets = ""              # user budgets N of the samplers (empty: from the preset)
distill_budgets = ""      # user budgets of DISTILL-CF (empty: from the preset)
distill_steps = None      # outer steps of each DISTILL-CF run (None: from the preset, 50 on ml-1m, 100 elsewhere)
samplers = "interaction-rns,user-rns,head-user,svp-cf,distill-cf"  # sources of Fig. 3
seed = 42                 # noise, samplers and DISTILL-CF
output_dir = ""           # results JSON and the sweep cache go here (empty: the repo runs/ folder)
figures_dir = ""          # figures are saved here (empty: the repo figures/ folder)

# %%
import os
import platform
import time

import jax
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

import infae_kit
from infae_kit.checks import list_parameter, parse_list
from infae_kit.data import dataset_label, load_dataset
from infae_kit.evaluation.protocol import metric_names
from infae_kit.experiments.noise import add_noise, flips_per_user
from infae_kit.paths import figures_dir as default_figures_dir, output_path, runs_dir
from infae_kit.evaluation.plotting import save_figure, set_theme
from infae_kit.evaluation.results import write_results
from infae_kit.experiments.sweeps import (
    FULL,
    NOISE_BUDGETS,
    NOISE_DISTILL_BUDGETS,
    NOISE_LEVELS,
    SOURCE_LABELS,
    check_notebook_preset,
    notebook_settings,
    relative_drop,
    run_sweep,
)
from infae_kit.experiments.sweep_figures import plot_noise_budget_curves, plot_noise_drop

set_theme()
print(f"python {platform.python_version()} · jax {jax.__version__} ({jax.default_backend()}) · "
      f"numpy {np.__version__} · infae_kit {infae_kit.__version__}")
out_dir = output_path(output_dir, runs_dir())
fig_dir = output_path(figures_dir, default_figures_dir())
cache_dir = out_dir / "sweep_cache"

resolved_preset = check_notebook_preset(os.environ.get("INFAE_NOTEBOOK_PRESET", "full")
                                       if preset == "auto" else preset)
noise_list = list_parameter("noise_levels", noise_levels or NOISE_LEVELS[resolved_preset])
budget_list = list_parameter("budgets", budgets or NOISE_BUDGETS[resolved_preset])
distill_list = list_parameter("distill_budgets", distill_budgets or NOISE_DISTILL_BUDGETS[resolved_preset])
source_list = parse_list(samplers, str, "samplers")
settings = notebook_settings(resolved_preset, dataset=dataset, seed=seed, distill_steps=distill_steps)
results_name = dataset_label(dataset, validation)  # results and figures are filed under it
if 0.0 not in noise_list:
    raise ValueError("noise_levels must include 0: the drops of Figure 3 are relative to the clean full data")
print(f"preset {resolved_preset!r} · validation {validation!r} · noise {noise_list} % · budgets {budget_list} · "
      f"DISTILL-CF {distill_list}")

# %% [markdown]
# ## 1. Data and the noise model
#
# For every user, x % of **all items of the catalogue** are flipped, 0 ↔ 1 (the paper: "we randomly flip x % of
# the total number of items in the corpus for each user"): with $|\mathcal I|$ items, $k=\lfloor x|\mathcal I|/100
# \rceil$ distinct items per user, drawn uniformly. Since users hold few of the items, nearly every flip *adds* a
# fake interaction: at 5 % on a catalogue of thousands of items this is far more than a typical user's history.
# Only train is corrupted; validation and test stay clean. With `validation = "holdout"` the users without a
# validation item first give one train item to validation (`docs/evaluation.md`, "Validation protocols"), and the
# noise is added to the train split that is left.

# %%
t0 = time.perf_counter()
data = load_dataset(dataset, seed=seed, validation=validation)
t_load = time.perf_counter() - t0
avg = data.train.nnz / data.n_users
noise_rows = []
for p in noise_list:
    k = flips_per_user(data.n_items, p)
    noisy = add_noise(data.train, p, seed=seed)
    kept = data.train.multiply(noisy).nnz / data.train.nnz
    noise_rows.append({"noise %": p, "flips per user": k, "train interactions": noisy.nnz,
                       "real interactions kept %": 100 * kept,
                       "fake share of train %": 100 * (noisy.nnz - data.train.multiply(noisy).nnz) / noisy.nnz})
print(f"{dataset}: {data.n_users:,} users × {data.n_items:,} items; {avg:.1f} train interactions per user")
pd.DataFrame(noise_rows).round(2)

# %% [markdown]
# ## 2. The sweep
#
# Figure 3 trains **EASE** on every sampler's sample of the noisy train set; Figure 4 trains **∞-AE and EASE** on
# DISTILL-CF's and user-RNS's. Each model's λ is picked on (clean) validation HR@100; DISTILL-CF distils the noisy
# data with the dataset's recorded τ, γ, λ₂ and `distill_steps` outer steps.

# %%
t0 = time.perf_counter()
fig3 = run_sweep(data, sources=source_list, budgets=budget_list, models=["ease"], noise_levels=noise_list,
                 settings=settings, cache_dir=cache_dir, source_budgets={"distill-cf": distill_list})
fig4 = run_sweep(data, sources=["distill-cf", "user-rns"], budgets=budget_list, models=["infae", "ease"],
                 noise_levels=noise_list, settings=settings, cache_dir=cache_dir,
                 source_budgets={"distill-cf": distill_list})
t_sweep = time.perf_counter() - t0
n_computed = fig3.n_computed + fig4.n_computed
print(f"{len(fig3.rows) + len(fig4.rows)} cells in {t_sweep:.0f} s ({n_computed} computed)")
fig3.table()[["source", "n_users", "noise", "lambda", "rows", "test_HR@10", "test_NDCG@10", "seconds"]].round(3)

# %% [markdown]
# ## 3. Figure 3 / 13 — how much does EASE lose?
#
# $$\text{drop}(\text{source}, N, x) = 100\,\frac{m_{\text{full, clean}} - m_{\text{source}, N, x}}
#   {m_{\text{full, clean}}}$$
#
# for a metric $m$ of EASE: 0 is as good as EASE on all the clean data; the dashed line is EASE on all the noisy
# data.

# %%
fig = plot_noise_drop(fig3, metrics=["HR@10"], budgets=budget_list, title=f"EASE under noise · {results_name}")
save_figure(fig, f"05_noise_drop-{results_name}", figures_dir=fig_dir)
plt.show()
fig = plot_noise_drop(fig3, metrics=metric_names(), budgets=budget_list)
save_figure(fig, f"05_noise_drop_all_metrics-{results_name}", figures_dir=fig_dir)
plt.show()

# %% [markdown]
# ## 4. Figure 4 / 14 — ∞-AE and EASE on noisy, down-sampled data

# %%
fig = plot_noise_budget_curves(fig4, metrics=["HR@10"], noise_levels=noise_list,
                               title=f"∞-AE and EASE on DISTILL-CF / user-RNS users under noise · {results_name}")
save_figure(fig, f"05_noise_budget-{results_name}", figures_dir=fig_dir)
plt.show()
fig = plot_noise_budget_curves(fig4, metrics=metric_names(), noise_levels=noise_list)
save_figure(fig, f"05_noise_budget_all_metrics-{results_name}", figures_dir=fig_dir)
plt.show()

# %% [markdown]
# ## 5. The paper's claims, measured

# %%
claims: dict = {}
lines = []
drops = relative_drop(fig3.rows, "HR@10", "ease")
sources_present = [s for s in source_list if s in set(drops.source)]
if "distill-cf" in sources_present and len(sources_present) > 1:
    best = []
    lead = {}
    for p in noise_list:
        for n in distill_list:
            cell = drops[(drops.noise == p) & (drops.n_users == n)]
            if cell.source.nunique() < 2:
                continue
            d = float(cell[cell.source == "distill-cf"].drop_percent.iloc[0])
            others = cell[cell.source != "distill-cf"]
            best.append({"noise": p, "n_users": int(n), "distill_drop": d,
                         "best_other": str(others.loc[others.drop_percent.idxmin(), "source"]),
                         "best_other_drop": float(others.drop_percent.min())})
            lead.setdefault(int(n), {})[p] = float(others.drop_percent.min()) - d
    wins = [b["distill_drop"] <= b["best_other_drop"] for b in best]
    growing = {n: bool(v[max(v)] > v[min(v)]) for n, v in lead.items()}
    claims["claim1"] = {"cells": best, "distill_best_in": int(sum(wins)), "cells_checked": len(wins),
                        "lead_by_budget_and_noise": lead, "lead_grows": growing}
    lines.append(f"**Claim 1**: DISTILL-CF has the smallest EASE HR@10 drop — **{'holds' if all(wins) else 'does not hold'}**"
                 f" ({sum(wins)}/{len(wins)} (noise, N) cells); its lead over the best other sampler (drop points) "
                 + "; ".join(f"N={n}: " + ", ".join(f"{p:g} %: {v:+.1f}" for p, v in sorted(l.items()))
                             for n, l in lead.items())
                 + f" — grows with noise: **{'holds' if all(growing.values()) else 'does not hold'}**.")
top = max(noise_list)
full_noisy = fig4.value(FULL, "ease", "HR@10", noise=top)
distilled = {int(n): fig4.value("distill-cf", "ease", "HR@10", n, noise=top) for n in distill_list}
claims["claim2"] = {"noise": top, "ease_full_noisy_HR@10": full_noisy, "ease_distill_HR@10": distilled}
lines.append(f"**Claim 2** (noise {top:g} %): EASE on DISTILL-CF ≥ EASE on the full noisy data — "
             f"**{'holds' if any(v >= full_noisy for v in distilled.values()) else 'does not hold'}** "
             f"(full {full_noisy:.2f}; distilled " + ", ".join(f"N={n}: {v:.2f}" for n, v in distilled.items()) + ").")
gap = {p: fig4.value(FULL, "infae", "HR@10", noise=p) - fig4.value(FULL, "ease", "HR@10", noise=p)
       for p in noise_list}
increasing = all(gap[b] >= gap[a] for a, b in zip(sorted(gap), sorted(gap)[1:]))
claims["claim3"] = {"infae_minus_ease_full_HR@10": gap, "grows": bool(gap[top] > gap[0.0]),
                    "monotone": bool(increasing)}
lines.append(f"**Claim 3**: ∞-AE's lead over EASE on full data grows with noise — "
             f"**{'holds' if gap[top] > gap[0.0] else 'does not hold'}** (HR@10 gap "
             + ", ".join(f"{p:g} %: {v:+.2f}" for p, v in gap.items())
             + f"; {'monotone' if increasing else 'not monotone'}).")
display(Markdown("\n\n".join(lines)))

# %% [markdown]
# ## 6. Record the results

# %%
path = write_results(
    out_dir, "05_noise", results_name,
    parameters=dict(dataset=dataset, validation=validation, preset=resolved_preset,
                    noise_levels=noise_list, budgets=budget_list,
                    distill_budgets=distill_list, distill_steps=distill_steps, samplers=source_list, seed=seed),
    metrics=fig4.metrics_by_cell(("distill-cf", "user-rns"), noise=None),
    timings_s={"load": t_load, "sweep": t_sweep},
    extra={"fig3": fig3.rows, "fig4": fig4.rows, "noise_model": noise_rows, "claims": claims,
           "cells_computed": n_computed},
)
print(f"results → {path}")
