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
# # 03 · DISTILL-CF: synthesising a tiny set of fake users for ∞-AE
#
# Reproduces **§4 (DISTILL-CF), Algorithm 3 and Appendix B.4**, and the last column of **Table 1**
# ("DISTILL-CF + ∞-AE", μ = 500 fake users) of *Infinite Recommendation Networks: A Data-Centric Approach*
# (Sachdeva et al., NeurIPS 2022) on one dataset.
#
# **Claims tested.**
# 1. ∞-AE trained on μ users *synthesised* by DISTILL-CF approaches — the paper says 96–105 % of — ∞-AE trained
#    on **all** users, and beats ∞-AE trained on μ random real users.
# 2. The summary is model-agnostic: EASE trained on it still recommends well.
# 3. Multi-step Gumbel sampling with the hard-tanh keeps the summary **sparse and discrete**, each fake user
#    holding a variable number of items controlled by the entropy of its prior row.
#
# **Which configuration runs.** With `preset = "auto"` (the default) the notebook runs the best configuration
# recorded for the dataset (`infae_kit.distill.RECORDED_CONFIGS`, measured with `infae_kit.distill.search`;
# the paper code's defaults — μ = 500, γ = 200, τ = 10, 500 steps — for a dataset without one), except under the
# test suite, which sets `INFAE_NOTEBOOK_PRESET=ci` for a CI-sized run (`infae_kit.distill.CI_CONFIG`, too
# short to reach Table 1). Any hyper-parameter given explicitly overrides the preset:
# `papermill notebooks/03_distill.ipynb out.ipynb -p dataset douban-book -p gamma 500`. Distilled supports are
# cached under `output_dir/distill_cache`, keyed by the configuration and the data, and long runs checkpoint
# there: rerunning the notebook, or resuming an interrupted run, costs only what was not done yet.

# %% tags=["parameters"]
dataset = "magazine"   # any name from infae_kit.data.list_datasets()
validation = "paper"   # paper (the split as it is) or holdout (a validation item for users without one)
preset = "auto"        # auto, recorded, ci or paper-code (see above)
budget = None          # mu, the number of fake users (None: from the preset; the paper: 500)
gamma = None           # Gumbel samples per fake user and step (None: from the preset; the code: 200)
tau = None             # Gumbel temperature (None: from the preset; the code 10, the released grid 0.3 to 5)
lambda2 = None         # weight of the cardinality penalty over mean train interactions per user (code: 0.001)
steps = None           # outer Adam steps (None: from the preset; the paper: 500, early exit after 150)
lr = None              # Adam learning rate (None: from the preset; the paper: 0.04)
batch_size = None      # real users per outer step, -1 for all users (None: from the preset; the code: -1)
seed = 42              # initial users, Gumbel keys, user batches and the random-users baseline
support = "soft"       # released support: soft (the code), topk or hard (binary), see infae_kit.distill
reuse = True           # load the support of an identical earlier run from the cache instead of distilling again
output_dir = ""        # results JSON, the support artifact and the cache go here (empty: the repo runs/ folder)
figures_dir = ""       # figures are saved here (empty: the repo figures/ folder)

# %%
import os
import platform
import time

import jax
import matplotlib.pyplot as plt
import numpy as np
import optax
import scipy.sparse as sp
from IPython.display import Markdown, display

import infae_kit
from infae_kit.models.baselines import EASE, EASE_LAMBDA_GRID
from infae_kit.data import dataset_label, dataset_statistics, load_dataset, users_without_validation
from infae_kit.distill import (
    distill_cache_path,
    distill_cached,
    distill_config_for,
    initial_prior,
    load_distilled,
    topk_binarize,
)
from infae_kit.evaluation.protocol import evaluate_model, metric_names
from infae_kit.evaluation.selection import tune_and_evaluate
from infae_kit.models.infinite_ae import InfiniteAE, tune_and_evaluate_infinite_ae
from infae_kit.paths import figures_dir as default_figures_dir, output_path, runs_dir
from infae_kit.distill.figures import gumbel_row_profile, plot_distill_training, plot_distilled_vs_real
from infae_kit.evaluation.plotting import save_figure, set_theme
from infae_kit.evaluation.results import PAPER_TABLE1, markdown_table, metrics_table, write_results

set_theme()
print(f"python {platform.python_version()} · jax {jax.__version__} ({jax.default_backend()}) · "
      f"optax {optax.__version__} · numpy {np.__version__} · infae_kit {infae_kit.__version__}")
out_dir = output_path(output_dir, runs_dir())
fig_dir = output_path(figures_dir, default_figures_dir())

resolved_preset = os.environ.get("INFAE_NOTEBOOK_PRESET", "recorded") if preset == "auto" else preset
config = distill_config_for(dataset, resolved_preset, budget=budget, gamma=gamma, tau=tau, lambda2=lambda2,
                            steps=steps, lr=lr, batch_size=batch_size, seed=int(seed), support=str(support))
results_name = dataset_label(dataset, validation)  # results and figures are filed under it
print(f"preset {resolved_preset!r} · validation {validation!r} · results filed as {results_name!r}")
config

# %% [markdown]
# ## 1. Data
#
# Binary users × items matrix, each user's interactions split 80/10/10 at random (train/validation/test). For
# `magazine` and `ml-1m` these are the paper's own files and split. The real users' **train** rows are what
# DISTILL-CF summarises; validation drives λ and early stopping; test is touched only in §6. With
# `validation = "holdout"` every user without a validation item (and with at least two train items) gives one
# train item, drawn with `seed`, to validation; train + validation and test are unchanged, so the test pass is
# the paper protocol's (`docs/evaluation.md`, "Validation protocols").

# %%
t0 = time.perf_counter()
data = load_dataset(dataset, seed=seed, validation=validation)
t_load = time.perf_counter() - t0
stats = dataset_statistics(data)
print(f"{dataset} ({data.validation} validation): loaded in {t_load:.2f} s; a budget of μ = {config.budget} is "
      f"{100 * config.budget / data.n_users:.1f} % of the {data.n_users:,} users")
{k: stats[k] for k in ("users", "items", "interactions", "sparsity", "train", "val", "test") if k in stats}

# %% [markdown]
# ## 2. The idea
#
# **Bilevel objective (Eq. 2).** Find a small support set $\mathcal D^s$ such that the model fitted on it
# predicts the real data well:
#
# $$\min_{\mathcal D^s}\; \mathbb E_{u\sim\mathcal U}\big[\,\ell(\phi^*_{\mathcal D^s}(X_u),\,X_u)\big]
#   \quad\text{s.t.}\quad \phi^*_{\mathcal D^s} = \arg\min_\phi \mathbb E_{\mathcal D^s}[\ell(\phi)] .$$
#
# With ∞-AE as $\phi$ the **inner problem has a closed form** (notebook 02): for a sampled support
# $\hat X^s \in [0,1]^{\mu\times|\mathcal I|}$,
#
# $$\alpha = \big(K_{\hat X^s\hat X^s} + \lambda\,\tfrac{\operatorname{tr}K}{\mu}\,I\big)^{-1}\hat X^s,
#   \qquad \tilde X_b = K_{X_b \hat X^s}\,\alpha ,$$
#
# so the outer gradient flows through one $\mu\times\mu$ solve: $O(\mu^2|\mathcal I|)$ per step instead of
# $O(|\mathcal U|^2|\mathcal I|)$ for the full ∞-AE.
#
# **Discrete, sparse fake users (Eq. 3).** DISTILL-CF learns a continuous prior $X^s$ (initialised with the
# train rows of μ random real users) and draws the support from it by *multi-step Gumbel sampling*:
#
# $$\hat X^s = \sigma\Big(\sum_{k=1}^{\gamma} \operatorname{softmax}\big((X^s + G_k)/\tau\big)\Big),
#   \qquad G_k \sim \text{Gumbel}(0,1),\quad \sigma = \text{hard-tanh (clip to }[-1,1]).$$
#
# Each of the γ draws picks (softly) one item per fake user; the sum lets a fake user hold a *variable*
# number of items, and the clip keeps repeated picks at 1.
#
# **Loss actually optimised.** Eq. 3 and Algorithm 3 print a binary cross-entropy on $\tilde X_b$. The
# released code — and `infae_kit.distill`, default `loss="multinomial"` — uses the multinomial
# log-likelihood instead, plus the cardinality term:
#
# $$L(X^s) = \frac1{|b|}\sum_{u\in b} -\sum_i X_{ui}\,\log\operatorname{softmax}(\tilde X_u)_i
#   \;+\; \lambda_2\,\frac{\tfrac1\mu\sum_{v,i}\hat X^s_{vi}}{\text{train interactions}/|\mathcal U|} .$$
#
# The second term is the L1 norm of $\hat X^s$ (all entries are non-negative) per fake user, relative to a
# real user's activity: it pushes fake users to be as sparse as real ones. λ is not fixed: it is re-picked over
# {1e-5, 1e-3, 0.1, 1, 5, 50} on validation HR@100 at every validation and used until the next (B.4).

# %% [markdown]
# ## 3. What multi-step Gumbel sampling does to one fake user
#
# One prior row — the initial prior of the first fake user, i.e. a real user's train row (logit 1 on its
# items, 0 elsewhere) — sampled with different γ and τ. Left to right τ grows; each curve is one γ. Values
# are sorted (largest first). Two sparsity measures per setting:
#
# * $n_\text{eff} = (\sum_i \hat x_i)^2 / \sum_i \hat x_i^2$, the *effective* number of items (the
#   participation ratio: equals $k$ for a row of $k$ equal non-zeros);
# * the items of the **hard** sample drawn with the same keys (τ → 0, one Gumbel-max item per draw): the
#   union of γ categorical draws.
#
# The soft sample itself has **no exact zeros** (every softmax is positive): it becomes sparse only as τ → 0.

# %%
_, initial_users = initial_prior(data.train, config.budget, config.seed)  # the μ real users the prior starts from
first_row = data.train[int(initial_users[0])]
prior_row = jax.numpy.asarray(first_row.toarray().astype(np.float32))
gammas, taus = (1, 10, 100), (0.3, 1.0, 10.0)
fig, gumbel_grid = gumbel_row_profile(prior_row, jax.random.PRNGKey(seed), gammas, taus,
                                      title=f"Multi-step Gumbel sampling of one prior row ({int(first_row.nnz)} "
                                            f"items of {data.n_items:,} at logit 1)")
save_figure(fig, f"03_gumbel_row-{results_name}", figures_dir=fig_dir)
plt.show()
display(Markdown(markdown_table(["γ, τ", "row sum", "n_eff", "exact non-zeros", "hard items"], [
    [k, f"{v['row_sum']:.2f}", f"{v['n_eff']:.1f}", v["exact_nonzeros"], v["hard_items"]]
    for k, v in gumbel_grid.items()])))

# %% [markdown]
# Small τ makes each draw nearly one-hot, so the row holds about as many items as distinct draws, and the
# prior's entropy decides how many distinct items γ draws hit. At the code's τ = 10 each draw is nearly
# uniform over the catalogue: the sample is a dense row of small values, γ/|items| each, whatever the
# prior — sparse only in the sense that its *mass* (the row sum, at most γ) is bounded, which λ₂ penalises.

# %% [markdown]
# ## 4. The run
#
# Each outer step: sample $\hat X^s$, fit ∞-AE on it in closed form, score all real users (`batch_size=-1`)
# and take one Adam step on $X^s$. At step 0 and on the validation schedule the support is sampled with the
# next step's key, ∞-AE is fitted on it for every λ of the grid and validated; the best support seen is kept.

# %%
cache_dir = out_dir / "distill_cache"
result, from_cache = distill_cached(data, config, cache_dir, reuse=bool(reuse))  # reuse=False: distil afresh
h = result.history
if from_cache:
    print(f"loaded from the cache {distill_cache_path(data, config, cache_dir)} (timings of the original run)")
print(f"{h['steps_run']} steps in {result.timings['total']:.1f} s "
      f"({result.timings['s_per_step']:.2f} s/step after a first step of {result.timings['first_step']:.1f} s "
      f"with compilation; validation {result.timings['validation']:.1f} s); stopped early: {h['stopped_early']}")
print(f"best support at step {h['best_step']}: validation HR@100 {h['best_metric']:.2f} with λ = "
      f"{result.best_lambda:g} (step 0, the real users: {h['evaluations'][0]['metrics']['HR@100']:.2f})")

# %%
fig = plot_distill_training(h, config, title=f"DISTILL-CF on {results_name}: μ={config.budget}, "
                                             f"γ={config.gamma}, τ={config.tau:g}, support={config.support}")
save_figure(fig, f"03_training-{results_name}", figures_dir=fig_dir)
plt.show()

# %% [markdown]
# ## 5. The distilled users next to the real ones
#
# Left: interactions per user — for the summary the row sum (its mass), next to the real train users and the μ
# real users DISTILL-CF started from. Right: item popularity (column sums, sorted, as a share of all
# interactions so that matrices of different sizes compare): does the summary keep the long tail, or collapse
# onto the head items?

# %%
real = data.train
init = real[np.asarray(h["initial_users"])]
synth = result.best_support
mats = {"real train (all users)": real, f"initial support (μ={config.budget} real users)": init,
        f"distilled ({config.support})": synth}
fig, profile = plot_distilled_vs_real(mats, title=f"{results_name}: distilled vs real users")
save_figure(fig, f"03_distilled_vs_real-{results_name}", figures_dir=fig_dir)
plt.show()
display(Markdown(markdown_table(
    ["matrix", "mean row sum", "median row sum", "items with mass", "share of top 10 % items"],
    [[k, f"{v['mean_row_sum']:.2f}", f"{v['median_row_sum']:.2f}", v["items_with_mass"],
      f"{100 * v['top10pct_item_share']:.1f} %"] for k, v in profile.items()])))

# %% [markdown]
# ## 6. Test metrics: distilled vs all users vs random users, and EASE on the summary
#
# * **DISTILL-CF + ∞-AE**: ∞-AE fitted on the released support with `result.best_lambda` — the λ picked on
#   validation HR@100 over the DISTILL-CF grid *for that very support* when it was kept (refitting and
#   re-picking over the same grid gives the same λ).
# * **∞-AE, all users**: notebook 02's protocol, λ picked on validation over the paper's ∞-AE grid.
# * **∞-AE, μ random real users**: the same μ users DISTILL-CF started from (same seed), λ picked on
#   validation over the DISTILL-CF grid.
# * **EASE on the distilled support**: λ picked on validation HR@100 over the paper's EASE grid.
#
# Test protocol as everywhere in the kit: train + validation as context, seen items masked. HR, nDCG, PSP in %.

# %%
t0 = time.perf_counter()
infae_distilled = InfiniteAE(result.best_lambda).fit(synth)
distilled_val = evaluate_model(infae_distilled, data, "val").metrics
distilled_test = evaluate_model(infae_distilled, data, "test").metrics
t_eval_distilled = time.perf_counter() - t0

full = tune_and_evaluate_infinite_ae(data, seed=seed)
random_users = tune_and_evaluate_infinite_ae(data, lambdas=config.val_lambdas, user_budget=config.budget,
                                             seed=config.seed)
assert np.array_equal(random_users.model.train_user_index_, h["initial_users"])  # same users as step 0

t0 = time.perf_counter()
ease = tune_and_evaluate(lambda lam: EASE(lam), EASE_LAMBDA_GRID, data, train=synth)
ease_val, ease_lambda, ease_test = ease.val_metrics, ease.best_value, ease.test_metrics
t_ease = time.perf_counter() - t0
ease_full = tune_and_evaluate(lambda lam: EASE(lam), EASE_LAMBDA_GRID, data)
print(f"λ: distilled {result.best_lambda:g} · all users {full.best_value:g} · random users "
      f"{random_users.best_value:g} · EASE on distilled {ease_lambda:g}")

# The soft support binarised after the fact: each fake user keeps its round(row sum) most sampled items.
topk = None
if config.support == "soft":
    binary_support = sp.csr_matrix(topk_binarize(synth.toarray()))
    topk = tune_and_evaluate(lambda lam: InfiniteAE(lam), config.val_lambdas, data, train=binary_support)
    print(f"binarised support: {binary_support.nnz:,} interactions "
          f"({binary_support.nnz / config.budget:.1f} per fake user), λ {topk.best_value:g}")

# %%
names = [n for n in metric_names((10, 100)) if n != "PSP@100"]
paper = PAPER_TABLE1.get(dataset, {})
ours = {
    f"DISTILL-CF + ∞-AE (μ={config.budget})": (distilled_test, "infae_distilled"),
    "∞-AE, all users": (full.test_metrics, "infae"),
    f"∞-AE, {config.budget} random users": (random_users.test_metrics, None),
    f"EASE on the distilled support (μ={config.budget})": (ease_test, None),
}
if topk is not None:
    ours[f"DISTILL-CF + ∞-AE, support binarised (top-k rows, μ={config.budget})"] = (topk.test_metrics, None)
reference = {f"DISTILL-CF + ∞-AE (μ={config.budget})": paper["infae_distilled"]} if paper else {}
if paper:
    reference["∞-AE, all users"] = paper["infae"]
display(Markdown(metrics_table({label: m for label, (m, _) in ours.items()}, names, reference=reference)))
share = {label: 100 * m["NDCG@10"] / full.test_metrics["NDCG@10"] for label, (m, _) in ours.items()}
for label, v in share.items():
    print(f"{label}: {v:.1f} % of full-data ∞-AE test NDCG@10")

# %% [markdown]
# **Reading the table.** Shares are of the test NDCG@10 of ∞-AE trained on every user (the paper's Table 1
# compares the same way); the paper's numbers are for μ = 500.

# %%
distilled_label, random_label, ease_label = list(ours)[:1] + list(ours)[2:4]
no_val = int(users_without_validation(data).size)
lines = [
    f"* **{dataset}**, μ = {config.budget}, τ = {config.tau:g}, γ = {config.gamma} ({resolved_preset} preset): "
    f"{config.budget} distilled users give **{share[distilled_label]:.1f} %** of full-data ∞-AE's test NDCG@10 "
    f"({distilled_test['NDCG@10']:.2f} against {full.test_metrics['NDCG@10']:.2f}); the {config.budget} random "
    f"real users they started from give {share[random_label]:.1f} % ({random_users.test_metrics['NDCG@10']:.2f}).",
    f"* **Model-agnostic:** EASE trained on the summary reaches {ease_test['NDCG@10']:.2f} test NDCG@10, "
    f"{100 * ease_test['NDCG@10'] / ease_full.test_metrics['NDCG@10']:.1f} % of EASE trained on every user "
    f"({ease_full.test_metrics['NDCG@10']:.2f}).",
]
if "infae_distilled" in paper:
    paper_share = 100 * paper["infae_distilled"]["NDCG@10"] / paper["infae"]["NDCG@10"]
    worst = max(names, key=lambda n: abs(distilled_test[n] / paper["infae_distilled"][n] - 1))
    lines.append(f"* **The paper** reports {paper_share:.1f} % on {dataset}; our distilled row is within "
                 f"{100 * abs(distilled_test[worst] / paper['infae_distilled'][worst] - 1):.1f} % of the paper's "
                 f"on every metric (largest gap: {worst}).")
if resolved_preset == "ci":
    lines.append(f"* **This is the CI-sized run** ({config.steps} steps): too short for the prior to move far from "
                 "its initialisation, its numbers are a smoke test, not a result.")
lines.append(f"* **Validation caveat** ({data.validation} validation): {no_val:,} of {data.n_users:,} users have no "
             f"validation item and ∞-AE on all users validates at HR@100 {full.best_val_metrics['HR@100']:.1f}; where "
             "that split is small, the validation metrics that pick λ and the best step are noisy"
             + (" (`validation = \"holdout\"` gives those users one)." if data.validation == "paper" else "."))
lines.append(f"* **Sparsity:** the released support holds {synth.nnz:,} stored values (density "
             f"{synth.nnz / (synth.shape[0] * synth.shape[1]):.3f}) with a mean row sum of "
             f"{profile[f'distilled ({config.support})']['mean_row_sum']:.1f} for γ = {config.gamma}: a support "
             "whose rows sum to γ is dense and unclipped, so the cardinality penalty is constant there."
             + (" Its binarised version (last row) shows how much the soft values carry." if topk is not None else ""))
display(Markdown("\n".join(lines)))

# %% [markdown]
# ## 7. The artifact
#
# The support is saved as `support.npz` (float32 CSR) plus `datacard.json` (config, λ, validation metrics,
# sparsity, the dataset's item-id hash, the whole history), each written atomically, and read back.

# %%
result.test_metrics = dict(distilled_test)  # the data card carries validation and test metrics
artifact = result.save(out_dir / f"03_distill-{results_name}-{config.support}")
loaded = load_distilled(artifact)
assert (loaded.best_support != synth).nnz == 0 and loaded.best_lambda == result.best_lambda
assert loaded.test_metrics == result.test_metrics
card = result.data_card()
print(f"saved to {artifact}")
print(f"support {loaded.best_support.shape}, {loaded.best_support.nnz:,} stored values "
      f"(density {card['sparsity']['density']:.3f}, binary: {card['binary']}), λ = {loaded.best_lambda:g}, "
      f"config round trip: {loaded.config == config}")

# %% [markdown]
# ## 8. Record the results
#
# `{output_dir}/03_distill-{dataset}.json` (`03_distill-{dataset}-holdout.json` under the holdout protocol, so
# that it never replaces the paper protocol's), read back by the tests and gathered by `python -m infae_kit.runner`.

# %%
path = write_results(
    out_dir, "03_distill", results_name,
    parameters=dict(dataset=dataset, validation=validation, preset=resolved_preset,
                    budget=budget, gamma=gamma, tau=tau, lambda2=lambda2,
                    steps=steps, lr=lr, batch_size=batch_size, seed=seed, support=support, reuse=reuse),
    metrics={
        "infae_distilled": {"val": distilled_val, "test": distilled_test},
        "infae_full": {"val": full.val_metrics[full.best_value], "test": full.test_metrics},
        "infae_random": {"val": random_users.val_metrics[random_users.best_value],
                         "test": random_users.test_metrics},
        "ease_distilled": {"val": ease_val[ease_lambda], "test": ease_test},
        "ease_full": {"val": ease_full.best_val_metrics, "test": ease_full.test_metrics},
        **({"infae_distilled_topk": {"val": topk.val_metrics[topk.best_value], "test": topk.test_metrics}}
           if topk is not None else {}),
    },
    timings_s={"load": t_load, "distill_total": result.timings["total"], "infae_total": full.timings_s["total"],
               "infae_random_total": random_users.timings_s["total"], "eval_distilled": t_eval_distilled,
               "ease_distilled_total": t_ease, "ease_full_total": ease_full.timings_s["total"]},
    extra={
        "best_lambda": result.best_lambda,
        "best_step": h["best_step"],
        "steps_run": h["steps_run"],
        "stopped_early": h["stopped_early"],
        "infae_full_best_lambda": full.best_value,
        "infae_random_best_lambda": random_users.best_value,
        "ease_distilled_best_lambda": ease_lambda,
        "ease_full_best_lambda": ease_full.best_value,
        "ndcg10_share_of_full_pct": {"infae_distilled": share[next(iter(ours))]},
        "from_cache": from_cache,
        "topk_support_nnz": int(binary_support.nnz) if topk is not None else None,
        "distill_config": config.to_dict(),
        "validation_history": [{"step": e["step"], "lambda": e["lambda"], "HR@100": e["metrics"]["HR@100"]}
                               for e in h["evaluations"]],
        "sparsity": card["sparsity"],
        "binary": card["binary"],
        "gumbel_row": gumbel_grid,
        "profile": profile,
        "artifact": str(artifact),
    },
)
print(f"results written to {path}")

# %% [markdown]
# ## References
# - N. Sachdeva, M. P. Dhaliwal, C.-J. Wu, J. McAuley. *Infinite Recommendation Networks: A Data-Centric
#   Approach.* NeurIPS 2022. Code: `noveens/distill_cf` (DISTILL-CF), `noveens/infinite_ae_cf` (∞-AE).
# - T. Nguyen, Z. Chen, J. Lee. *Dataset Meta-Learning from Kernel Ridge-Regression* (KIP). ICLR 2021.
# - E. Jang, S. Gu, B. Poole. *Categorical Reparameterization with Gumbel-Softmax.* ICLR 2017.
# - H. Steck. *Embarrassingly Shallow Autoencoders for Sparse Data.* WWW 2019.
# - A. Jacot, F. Gabriel, C. Hongler. *Neural Tangent Kernel.* NeurIPS 2018.
