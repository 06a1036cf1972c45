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
# # 06 · How anonymous is a DISTILL-CF summary? De-anonymization by matching and by prediction
#
# Reproduces **Appendix B.6, "How anonymized is the data synthesized by DISTILL-CF?"** (Figures 8 and 9) of
# *Infinite Recommendation Networks: A Data-Centric Approach* (Sachdeva et al., NeurIPS 2022) on one dataset.
#
# **Claim tested.** If a *sample* of real users' rows is published, the robust de-anonymization of Narayanan &
# Shmatikov (2008) re-identifies most of them from partial, noisy knowledge of their histories — the paper:
# 96.43 % of users on Douban with 90 % of each history revealed and no noise — and fewer as the noise grows.
# If a DISTILL-CF summary is published instead, predicting the hidden part of a user's history from it
# recovers the exact set for almost nobody — the paper: 0.86 % on Douban, "no level of de-anonymization" in
# Fig. 8.
#
# **What runs.** With `distill_preset = "auto"` the summary is the recorded μ = 500 DISTILL-CF support of the
# dataset (`infae_kit.distill.RECORDED_CONFIGS`, loaded from the cache when it was distilled before; the paper
# code's defaults for a dataset without one, unless overridden), except under the test suite
# (`INFAE_NOTEBOOK_PRESET=ci`), which distils a CI-sized summary (`infae_kit.distill.CI_CONFIG`), attacks at most 100 users
# per release and does not tune the control's λ: a smoke test, not a result. The attacks are cheap next to the
# distillation; everything reusable is in `infae_kit.experiments.privacy`. `douban-book` has no recorded configuration; the
# measured run used a budgeted one: `papermill notebooks/06_deanonymization.ipynb out.ipynb -p dataset
# douban-book -p distill_gamma 50 -p distill_tau 5.0 -p distill_steps 150` (its timings are in its result file,
# `distill_run_timings_s`).
#
# **The privacy–utility frontier (§9).** The same attack and control on one summary per DISTILL-CF setting of a
# grid (μ as a share of the users × γ × τ), against the summary's test NDCG@10 as a share of full-data ∞-AE's: is
# there a setting with ≤ 1 % de-anonymized at ≥ 95 % of full-data quality? Every summary and every point is
# cached (`infae_kit.experiments.privacy_frontier`); `make privacy-frontier` runs the grids of the recorded runs.

# %% tags=["parameters"]
dataset = "magazine"          # any name from infae_kit.data.list_datasets()
sampling_strategies = "user-rns,head-user,interaction-rns"  # published samples, the first one is the claim row
sample_budget = 0             # users per published sample, 0 for the summary size mu
noise_percents = "0,1,2,5,10"  # Fig. 8, percent of the catalogue flipped in each row of D prime
fig8_revealed_percent = 90    # Fig. 8, percent of each history revealed
revealed_percents = "10,20,30,40,50,60,70,80,90"  # Fig. 9, at 0 percent noise
n_targets = 500               # users attacked per release, at most (CI mode caps it at 100)
min_items = 2                 # a target holds at least this many items in D
phi = 1.5                     # eccentricity threshold of the matching attack (Narayanan and Shmatikov)
distill_preset = "auto"       # auto, recorded, ci or paper-code (see infae_kit.distill.distill_config_for)
distill_budget = None         # mu (None from the preset)
distill_gamma = None          # Gumbel samples per fake user and step (None from the preset)
distill_tau = None            # Gumbel temperature (None from the preset)
distill_steps = None          # outer steps (None from the preset)
frontier_budget_percents = "2,5,10,16"  # §9 frontier: mu as % of the users ("" for no frontier; CI: two small mu)
frontier_gammas = ""          # §9 frontier: gamma values ("" for the summary's)
frontier_taus = "0.5,5"       # §9 frontier: tau values ("" for the summary's)
frontier_steps = None         # §9 frontier: outer steps of every run (None for the summary's)
seed = 42                     # distillation, samples, targets and D prime
distill_cache_dir = ""        # cached DISTILL-CF supports (empty means output_dir/distill_cache)
output_dir = ""               # results JSON goes here (empty means the repo runs/ folder)
figures_dir = ""              # figures are saved here (empty means the repo figures/ folder)

# %%
import os
import platform
import time

import jax
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import scipy.sparse as sp
from IPython.display import Markdown, display

import infae_kit
from infae_kit.checks import list_parameter, parse_list
from infae_kit.experiments import privacy as P
from infae_kit.data import load_dataset
from infae_kit.distill import distill_cached, distill_config_for
from infae_kit.evaluation.protocol import evaluate_model
from infae_kit.evaluation.selection import tune_and_evaluate
from infae_kit.models.infinite_ae import InfiniteAE
from infae_kit.paths import figures_dir as default_figures_dir, output_path, repo_root, runs_dir
from infae_kit.evaluation.plotting import save_figure, set_theme
from infae_kit.evaluation.results import metrics_table, read_results, write_results
from infae_kit.experiments.privacy_figures import (
    frontier_table,
    frontier_verdict,
    plot_attack_curves,
    plot_privacy_frontier,
    recorded_runs_table,
    releases_table,
)
from infae_kit.experiments.privacy_frontier import frontier_configs, privacy_frontier
from infae_kit.experiments.sampling import sample

set_theme()
print(f"python {platform.python_version()} · jax {jax.__version__} ({jax.default_backend()}) · "
      f"numpy {np.__version__} · pandas {pd.__version__} · infae_kit {infae_kit.__version__}")
out_dir = output_path(output_dir, runs_dir())
fig_dir = output_path(figures_dir, default_figures_dir())
cache_dir = output_path(distill_cache_dir, out_dir / "distill_cache")

resolved_preset = (os.environ.get("INFAE_NOTEBOOK_PRESET", "recorded") if distill_preset == "auto"
                   else distill_preset)
ci_mode = resolved_preset == "ci"
config = distill_config_for(dataset, resolved_preset, budget=distill_budget, gamma=distill_gamma,
                            tau=None if distill_tau is None else float(distill_tau), steps=distill_steps,
                            seed=int(seed))
strategies = parse_list(sampling_strategies, str, "sampling_strategies")
noise_levels = [x / 100 for x in list_parameter("noise_percents", noise_percents)]
fractions = [x / 100 for x in list_parameter("revealed_percents", revealed_percents)]
fig8_fraction = float(fig8_revealed_percent) / 100
n_attacked = int(n_targets)
if ci_mode:
    n_attacked = min(n_attacked, 100)
n_published = int(sample_budget) or config.budget
print(f"preset {resolved_preset!r}; μ = {config.budget}, γ = {config.gamma}, τ = {config.tau:g}, "
      f"{config.steps} steps; samples of {n_published} users; up to {n_attacked} targets per release")

# %% [markdown]
# ## 1. Data: D is the train matrix
#
# D is the binary users × items **train** matrix — exactly what DISTILL-CF summarises and what a sample would
# be drawn from. For `magazine` and `ml-1m` these are the paper's files and split. How many items a user holds
# matters for both attacks: a short history is easy to *predict* (few items to guess) but hard to *match*
# (the items it shares with others identify nobody).

# %%
t0 = time.perf_counter()
data = load_dataset(dataset, seed=seed)
X = sp.csr_matrix(data.train)
t_load = time.perf_counter() - t0
items_per_user = np.diff(X.indptr)
print(f"{dataset}: {X.shape[0]:,} users × {X.shape[1]:,} items, {X.nnz:,} train interactions, loaded in "
      f"{t_load:.1f} s")
print(f"items per user: median {np.median(items_per_user):.0f}, mean {items_per_user.mean():.1f}; "
      f"{np.mean(items_per_user >= min_items):.1%} of users hold at least {min_items} (eligible targets)")

# %% [markdown]
# ## 2. The attacker
#
# The attacker knows, with identity, part of each target's history: **D′**. For a target $u$ with items
# $S_u$ in D it holds $\lfloor x\,|S_u|\rfloor$ of them (at least one) chosen at random — $x$ is the fraction
# revealed — and then noise: $k = \operatorname{round}(\eta\,|\mathcal I|)$ items of the whole catalogue
# $\mathcal I$ flipped (0 ↔ 1) in the row, the paper's "randomly flipping x % of the total items for each user"
# (`infae_kit.experiments.noise.add_noise`). $\eta$ is the noise level.
#
# **Sampling case: matching.** A sample of D's rows is public, without identities. The attacker scores every
# public row $r$ against its knowledge $a = $ D′$_u$ with the Scoreboard-RH of Narayanan & Shmatikov,
# restricted to binary data: rare items identify people, popular ones do not,
#
# $$\operatorname{score}(a, r) = \sum_{i \in \operatorname{supp}(a)\cap\operatorname{supp}(r)} \operatorname{wt}(i),
#   \qquad \operatorname{wt}(i) = \frac{1}{\log\big(1 + |\operatorname{supp}(i)|\big)},$$
#
# with $|\operatorname{supp}(i)|$ the number of public rows holding item $i$ (N–S write $\log|\operatorname{supp}(i)|$;
# the $+1$ keeps an item held by one row finite). It accepts the best row only when it stands out:
#
# $$\operatorname{ecc} = \frac{\max_r \operatorname{score} - \operatorname{max}_2\,\operatorname{score}}
#   {\sigma_r(\operatorname{score})} \;\ge\; \varphi ,$$
#
# the gap between the best and second-best score in units of the standard deviation of all the target's
# scores ($\varphi = 1.5$ in N–S), and otherwise says "no match". A target is **de-anonymized** when it is
# matched to its own published row; a match to someone else's row is a *wrong* match, and counts as a failure.
#
# **Distillation case: prediction.** Only the summary $\tilde{\mathcal D}$ is public: its rows are synthetic,
# so there is nobody to match. The attacker fits ∞-AE on $\tilde{\mathcal D}$ (with the λ DISTILL-CF picked for
# it), scores every item from D′$_u$, and — told how many items $m_u = |S_u \setminus \operatorname{supp}(a)|$
# are missing, as in the paper — predicts the $m_u$ best-scored items outside D′$_u$. The target is
# **de-anonymized** when this set is *exactly* the missing set (a tie across the boundary is a failure).
#
# **Control.** The same prediction attack with ∞-AE fitted on **every user of D except the targets** (λ
# picked on validation HR@100 over DISTILL-CF's grid, as DISTILL-CF picks its own): the best model of the
# kit that never saw the targets' rows. What it recovers is inferred from the population, not leaked by a
# release; the summary's leak is what it recovers beyond that.
#
# **Targets.** For a sample: up to `n_targets` of the published users (the people whose rows were released);
# for the summary and the control: up to `n_targets` users of D. Each holds at least `min_items` items, so
# something is always hidden. One seed builds every D′, so the targets of a release reveal the same items at
# every noise level (`infae_kit.experiments.privacy.attack_sweep`).

# %% [markdown]
# ## 3. What is published
#
# * one sample per strategy of `sampling_strategies`, of `sample_budget` users (default μ, the summary's size;
#   `infae_kit.experiments.sampling`). Interaction-RNS keeps as many random interactions as that many average users hold
#   (`user_budget="matched-interactions"`), so its rows are partial histories of many more users;
# * the DISTILL-CF summary: μ fake users (the soft support, values in [0, 1]);
# * the control's training rows: every non-target user of D (not published, only a reference).

# %%
t0 = time.perf_counter()
result, from_cache = distill_cached(data, config, cache_dir, progress=False)
t_distill = time.perf_counter() - t0
summary = result.best_support
print(f"DISTILL-CF summary {summary.shape}, λ = {result.best_lambda:g}, best step {result.history['best_step']} "
      f"of {result.history['steps_run']}; " + ("loaded from the cache" if from_cache else f"distilled in "
                                                f"{t_distill:.0f} s") + f" ({cache_dir})")

t0 = time.perf_counter()
# Targets get their own random stream: default_rng(seed) itself picks the samples and DISTILL-CF's initial
# users, and the targets must not coincide with those by construction.
target_rng = np.random.default_rng(np.random.SeedSequence([int(seed), 6]))
releases = []
for name in strategies:
    options = {"user_budget": "matched-interactions"} if name == "interaction-rns" else {}
    sampled = sample(name, X, n_users=n_published, seed=int(seed), **options)
    targets = P.draw_targets(X, n_attacked, among=sampled.users, min_items=int(min_items), seed=target_rng)
    releases.append(P.SampleRelease.from_sample(name, sampled, targets))
summary_targets = P.draw_targets(X, n_attacked, min_items=int(min_items), seed=target_rng)
distilled_model = InfiniteAE(result.best_lambda).fit(summary)
releases.append(P.ModelRelease("DISTILL-CF", distilled_model, summary_targets))
others = np.setdiff1d(np.arange(X.shape[0]), summary_targets)
# the control's λ is picked like DISTILL-CF's: validation HR@100 over the same grid (CI mode: the summary's λ)
control_grid = (result.best_lambda,) if ci_mode else config.val_lambdas
control_tuning = tune_and_evaluate(lambda lam: InfiniteAE(lam), control_grid, data, train=X[others])
releases.append(P.ModelRelease("control", control_tuning.model, summary_targets))
t_releases = time.perf_counter() - t0
print(f"λ: DISTILL-CF {result.best_lambda:g}, control {control_tuning.best_value:g}; "
      f"{np.isin(summary_targets, result.history['initial_users']).sum()} of the {len(summary_targets)} summary "
      "targets are among DISTILL-CF's initial users")

display(Markdown(releases_table(releases, X, {"DISTILL-CF": summary, "control": X[others]})))

# %% [markdown]
# ## 4. Figure 8: more noise in D′
#
# Fraction revealed fixed (`fig8_revealed_percent`, 90 % as in the paper); noise from `noise_percents`. Left,
# the paper's figure: % of the targets de-anonymized (solid: matching a sample; dashed: prediction). Right,
# for the prediction attack only, the share of the missing items that are among its top-$m$ guesses: a
# graded view of the leak where no whole set is recovered.

# %%
t0 = time.perf_counter()
fig8 = P.attack_sweep(X, releases, [(fig8_fraction, eta) for eta in noise_levels], phi=phi, seed=int(seed))
t_fig8 = time.perf_counter() - t0
fig8_df = pd.DataFrame(fig8)
fig = plot_attack_curves(fig8, "noise", "noise in D′ (% of the catalogue flipped per user)",
                         f"{dataset}: {100 * fig8_fraction:.0f} % of each history revealed")
save_figure(fig, f"06_deanonymization_noise-{dataset}", figures_dir=fig_dir)
plt.show()
fig8_df.assign(noise=100 * fig8_df["noise"]).pivot(index="noise", columns="release", values="percent").round(2)

# %% [markdown]
# ## 5. Figure 9: more of each history revealed
#
# No noise; fraction revealed from `revealed_percents`.

# %%
t0 = time.perf_counter()
fig9 = P.attack_sweep(X, releases, [(f, 0.0) for f in fractions], phi=phi, seed=int(seed))
t_fig9 = time.perf_counter() - t0
fig9_df = pd.DataFrame(fig9)
fig = plot_attack_curves(fig9, "fraction_revealed", "data revealed in D′ (% of each user's items)",
                         f"{dataset}: no noise")
save_figure(fig, f"06_deanonymization_revealed-{dataset}", figures_dir=fig_dir)
plt.show()
(fig9_df.assign(revealed=100 * fig9_df["fraction_revealed"])
 .pivot(index="revealed", columns="release", values="percent").round(2))

# %% [markdown]
# **How the matching attack fails.** A failure is either a refusal (no row stands out by φ: the revealed
# items are shared by several published rows, e.g. short histories of popular items) or a wrong match (noise
# items make another row score higher). Counts at the paper's headline setting and at the largest noise:

# %%
matching_cols = ["release", "noise", "targets", "correct", "wrong", "refused"]
(fig8_df[(fig8_df["attack"] == "matching") & fig8_df["noise"].isin([0.0, max(noise_levels)])][matching_cols]
 .astype({"wrong": int, "refused": int}).assign(noise=lambda d: 100 * d["noise"]).reset_index(drop=True))

# %% [markdown]
# ## 6. Why the prediction attack succeeds or fails
#
# Exact-set recovery gets harder as the number of missing items $m$ grows: with one missing item it is
# top-1 prediction, with ten it needs the ten best-scored items to be exactly the ten hidden ones. The table
# splits the summary's and the control's successes at the headline setting (noise 0, `fig8_revealed_percent`
# revealed) by $m$, with a graded measure next to the exact one: the share of the missing items that are in
# the top-$m$ prediction (`recovered`; it shows a leak even where no whole set is recovered). The group
# "initial users" checks for memorisation of specific people: DISTILL-CF starts from the rows of μ real users,
# so targets among those initial users could be easier to recover.

# %%
scenario = P.make_attack_scenario(X, fig8_fraction, 0.0, target_users=summary_targets, seed=int(seed))
initial = np.isin(summary_targets, np.asarray(result.history["initial_users"]))
by_m = []
for r in releases:
    if isinstance(r, P.ModelRelease):
        attack = P.prediction_attack(r.model, scenario.aux, scenario.true_rows)
        m = attack.n_missing
        for label, mask in (("m = 1", m == 1), ("m = 2–4", (m >= 2) & (m <= 4)), ("m = 5–9", (m >= 5) & (m <= 9)),
                            ("m ≥ 10", m >= 10), ("initial users", initial), ("all", m > 0)):
            if mask.any():
                by_m.append({"release": r.name, "group": label, "targets": int(mask.sum()),
                             "percent": 100 * float(attack.success[mask].mean()),
                             "recovered_percent": 100 * float(attack.recovered[mask].mean())})
by_m_df = pd.DataFrame(by_m)
by_m_table = by_m_df.pivot(index="group", columns="release", values=["percent", "recovered_percent"]).round(2)
by_m_table.columns = [f"{release}: {'exact set' if v == 'percent' else 'recovered'} %" for v, release in by_m_table]
by_m_table.join(by_m_df.drop_duplicates("group").set_index("group")["targets"])

# %% [markdown]
# ## 7. The two models are real recommenders
#
# ∞-AE fitted on the summary and the control, on the test split (train + validation as context, seen items
# masked; for the summary, the numbers notebook 03 reports for this support). A model that recommends badly
# would leak little for a dull reason.

# %%
t0 = time.perf_counter()
summary_test = evaluate_model(distilled_model, data, "test").metrics
t_eval = time.perf_counter() - t0
display(Markdown(metrics_table({
    f"∞-AE on the DISTILL-CF summary (λ = {result.best_lambda:g})": summary_test,
    f"control: ∞-AE on the {len(others):,} non-target users (λ = {control_tuning.best_value:g})":
        control_tuning.test_metrics}, list(summary_test))))

# %% [markdown]
# ## 8. The paper's claim, recorded
#
# The first sampling strategy (`sampling_strategies`) stands for the paper's "data-sampling"; the paper does
# not say which sampler and budget it used. The claim has three parts, each recorded as holds / does not hold
# (nothing is asserted):
#
# 1. sampling de-anonymizes most users (> 50 %) with 90 % revealed and no noise — paper 96.43 % on Douban;
# 2. distillation de-anonymizes about 1 % or less (≤ 1 %) at the same setting — paper 0.86 %;
# 3. more noise lowers the sampling attack (the largest noise gives fewer successes than no noise).

# %%
head = strategies[0]


def point(df, release, **where):
    rows = df[df["release"] == release]
    for key, value in where.items():
        rows = rows[np.isclose(rows[key], value)]
    return float(rows["percent"].iloc[0])


headline = {
    "sampling_strategy": head,
    "fraction_revealed": fig8_fraction,
    "sampling_percent": point(fig8_df, head, noise=0.0),
    "distillation_percent": point(fig8_df, "DISTILL-CF", noise=0.0),
    "control_percent": point(fig8_df, "control", noise=0.0),
    "distillation_recovered_percent": float(fig8_df.query("release == 'DISTILL-CF' and noise == 0")
                                            ["recovered_percent"].iloc[0]),
    "control_recovered_percent": float(fig8_df.query("release == 'control' and noise == 0")
                                       ["recovered_percent"].iloc[0]),
    "sampling_percent_at_max_noise": point(fig8_df, head, noise=max(noise_levels)),
    "max_noise_percent": 100 * max(noise_levels),
}
claim = {
    "sampling_deanonymizes_most": {
        "holds": headline["sampling_percent"] > 50.0, "ours": headline["sampling_percent"], "paper": 96.43},
    "distillation_about_1pct_or_less": {
        "holds": headline["distillation_percent"] <= 1.0, "ours": headline["distillation_percent"], "paper": 0.86},
    "noise_lowers_sampling": {
        "holds": headline["sampling_percent_at_max_noise"] < headline["sampling_percent"],
        "ours": [headline["sampling_percent"], headline["sampling_percent_at_max_noise"]]},
}
display(Markdown(
    f"**{dataset}**, {100 * fig8_fraction:.0f} % revealed, no noise: sampling ({head}) de-anonymizes "
    f"**{headline['sampling_percent']:.2f} %** (paper, Douban: 96.43 %), DISTILL-CF **"
    f"{headline['distillation_percent']:.2f} %** (paper 0.86 %; control {headline['control_percent']:.2f} %; "
    f"share of missing items recovered {headline['distillation_recovered_percent']:.1f} % against "
    f"{headline['control_recovered_percent']:.1f} % for the control). "
    f"At {headline['max_noise_percent']:g} % noise sampling drops to "
    f"{headline['sampling_percent_at_max_noise']:.2f} %.\n\n"
    + "\n".join(f"* {name.replace('_', ' ')}: **{'holds' if c['holds'] else 'does not hold'}**"
                for name, c in claim.items())))

# %% [markdown]
# **Reading the results.** The measured runs recorded with the kit (`figures/06_deanonymization-{dataset}.json`:
# the defaults, μ = the summary's size, seed 42; for `douban-book`, which has no recorded DISTILL-CF
# configuration, a budgeted run, `-p distill_gamma 50 -p distill_tau 5.0 -p distill_steps 150`), % de-anonymized
# at the headline setting (no noise), next to this run:

# %%
recorded = [read_results(p) for p in sorted((repo_root() / "figures").glob("06_deanonymization-*.json"))]
this_run = {"dataset": f"{dataset} (this run, {resolved_preset})", "fig8": fig8, "headline": headline}
display(Markdown(recorded_runs_table(recorded + [this_run])))
claim_lines = []
for key, text in (("sampling_deanonymizes_most", "Sampling de-anonymizes most published users (> 50 %)"),
                  ("distillation_about_1pct_or_less", "Distillation de-anonymizes about 1 % or less"),
                  ("noise_lowers_sampling", "Noise lowers the sampling attack")):
    holds = [r["dataset"] for r in recorded if r["claim"][key]["holds"]]
    fails = [r["dataset"] for r in recorded if not r["claim"][key]["holds"]]
    claim_lines.append(f"* **{text}:** holds on {', '.join(holds) or 'none'}"
                       + (f"; does not hold on {', '.join(fails)}" if fails else "")
                       + f" (this run: {'holds' if claim[key]['holds'] else 'does not hold'}).")
heavy = by_m_df[by_m_df["group"] == "m ≥ 10"].set_index("release")
if {"DISTILL-CF", "control"} <= set(heavy.index):
    claim_lines.append(
        f"* **Where the leak is (this run):** targets missing 10 or more items ({int(heavy.loc['DISTILL-CF', 'targets'])}"
        f" of {len(summary_targets)}) get {heavy.loc['DISTILL-CF', 'percent']:.1f} % of their exact sets and "
        f"{heavy.loc['DISTILL-CF', 'recovered_percent']:.1f} % of their missing items back from the summary, "
        f"against {heavy.loc['control', 'percent']:.1f} % and {heavy.loc['control', 'recovered_percent']:.1f} % "
        "for the control.")
display(Markdown("\n".join(claim_lines)))

# %% [markdown]
# * **Why sampling leaks.** A published row *is* a user's history: with most of it revealed the rare items it
#   shares with the attacker's knowledge single it out, and head-user samples publish the heaviest users, the
#   easiest to identify. On a very sparse dataset a target's revealed items are a few mostly popular ones that
#   several published rows share, so the attacker refuses (no row stands out by φ) rather than errs.
# * **Noise is destructive.** A percentage of the whole catalogue is many random flips per row, almost all of them
#   added items, so they outweigh a short true history; at high noise the attacker makes wrong matches as well as
#   refusals (the counts per release are in the table of §5).
# * **Why a summary can leak.** DISTILL-CF's objective is that ∞-AE fitted on the summary reconstructs every real
#   user's train row from that row — the attacker's task, on the very rows attacked. What the summary recovers
#   beyond the control (∞-AE on everyone but the targets) is leaked by the summary, not inferred from the
#   population; the control is as good a recommender (§7), so the difference is not a better model. The group
#   "initial users" of §6 checks that the leak is not a trace of the users DISTILL-CF started from. A summary of
#   μ users is a larger share of a small dataset than of a large one.
# * **Differences from the paper.** Not the same Douban (the paper's file is not available offline); the
#   douban-book summary is a budgeted run (the paper's γ for Douban is 500–2,000); the paper does not state its
#   sampler, sample size, target users or exactly how noise is flipped, so those are the choices written above.
#   With a few hundred targets a percentage carries a binomial standard error of a few points.

# %% [markdown]
# ## 9. The privacy–utility frontier
#
# One summary is one point. Is there a DISTILL-CF setting that leaks about 1 % (the paper's claim) and still
# recommends well? The summary's size μ is the first suspect: μ = 500 is a much larger share of a small
# dataset's users than of a large one's, and the leak sits in the heaviest users, whom a large summary can
# afford to encode. The frontier distils one summary per setting of the grid — μ as a share of the users
# (`frontier_budget_percents`) × γ (`frontier_gammas`) × τ (`frontier_taus`), every other field and the step
# count as the summary's unless `frontier_steps` is given — plus the summary of §3, and for each one measures:
#
# * **utility**: test NDCG@10 of ∞-AE fitted on the summary (λ as DISTILL-CF picked it on validation), as a
#   percentage of full-data ∞-AE's test NDCG@10 (λ over the paper's grid, picked on validation HR@100, as in
#   notebook 03);
# * **privacy**: % of the same targets de-anonymized by the prediction attack at the headline setting
#   (`fig8_revealed_percent` revealed, no noise), next to the same control as above.
#
# The target of the paper's claim, **≤ 1 % de-anonymized at ≥ 95 % of full-data quality**, is the shaded box.
# Every summary comes from the DISTILL-CF cache and every measured point is cached next to it
# (`infae_kit.experiments.privacy_frontier`): a rerun costs nothing and an interrupted grid resumes. In CI mode
# the grid is two small settings (half the CI summary's μ, and the CI summary itself), a smoke test.

# %%
t0 = time.perf_counter()


def frontier_values(name, value):
    """A frontier list parameter, or None ("", or CI mode) for the summary's own value."""
    return None if ci_mode or not str(value).strip() else list_parameter(name, value)


if ci_mode:
    frontier_shares = [config.budget / 2 / X.shape[0], config.budget / X.shape[0]]
else:
    frontier_shares = [p / 100 for p in frontier_values("frontier_budget_percents", frontier_budget_percents) or []]
frontier_base = config if frontier_steps is None else distill_config_for(
    dataset, resolved_preset, budget=distill_budget, gamma=distill_gamma,
    tau=None if distill_tau is None else float(distill_tau), steps=int(frontier_steps), seed=int(seed))
grid = []
if frontier_shares:
    grid = frontier_configs(frontier_base, X.shape[0], frontier_shares,
                            gammas=frontier_values("frontier_gammas", frontier_gammas),
                            taus=frontier_values("frontier_taus", frontier_taus))
if config not in grid:
    grid.append(config)  # the summary of §3 is a point of its own frontier
frontier = privacy_frontier(data, grid, cache_dir=out_dir, distill_cache_dir=cache_dir, target_users=summary_targets,
                            fraction_revealed=fig8_fraction, noise=0.0, seed=int(seed),
                            control_lambdas=control_grid, progress=False)
t_frontier = time.perf_counter() - t0
print(f"{len(grid)} settings: {frontier.n_computed} measured now, {frontier.n_cached} read from the cache; "
      f"{t_frontier:.0f} s (settings {frontier.timings_s['settings']:.0f} s, control {frontier.timings_s['control']:.0f} s, "
      f"full data {frontier.timings_s['full']:.0f} s)")
fig = plot_privacy_frontier(frontier)
save_figure(fig, f"06_deanonymization_frontier-{dataset}", figures_dir=fig_dir)
plt.show()
display(Markdown(frontier_table(frontier)))

# %% [markdown]
# **Does a setting reach the target?** For this run, then for every run recorded with a frontier
# (`figures/06_deanonymization-*.json`); the summary's own point must repeat the headline of §8 (same targets,
# same attack).

# %%
own = next(r for r, c in zip(frontier.rows, grid) if c == config)
recorded_frontiers = [r["frontier"] for r in recorded if "frontier" in r and r["dataset"] != dataset]
display(Markdown(
    f"This run: {frontier_verdict(frontier)}\n\n"
    f"The summary of §3 on the frontier: {own['deanonymized_percent']:.2f} % de-anonymized (§8: "
    f"{headline['distillation_percent']:.2f} %) at {own['quality_percent']:.1f} % of full-data quality (full-data "
    f"∞-AE test NDCG@10 {frontier.full['test_NDCG@10']:.2f}, λ = {frontier.full['lambda']:g}).\n\n"
    + "\n".join(f"* Recorded: {frontier_verdict(f)}" for f in recorded_frontiers)))

# %% [markdown]
# ## 10. Record the results
#
# `{output_dir}/06_deanonymization-{dataset}.json`: both curves in `fig8` and `fig9` (one row per release and
# setting, with the success/refusal/wrong counts), the split by missing items, the headline point and the
# claim; `frontier` holds the frontier of §9 (one row per setting, the control, the full-data reference, the
# attack's setting, whether a setting reaches the target, and its timings). `metrics` holds the test metrics of
# ∞-AE on the summary and of the control (the results schema only takes recommendation metrics).

# %%
path = write_results(
    out_dir, "06_deanonymization", dataset,
    parameters=dict(dataset=dataset, sampling_strategies=sampling_strategies, sample_budget=sample_budget,
                    noise_percents=noise_percents, fig8_revealed_percent=fig8_revealed_percent,
                    revealed_percents=revealed_percents, n_targets=n_targets, min_items=min_items, phi=phi,
                    distill_preset=resolved_preset, distill_budget=distill_budget, distill_gamma=distill_gamma,
                    distill_tau=distill_tau, distill_steps=distill_steps,
                    frontier_budget_percents=frontier_budget_percents, frontier_gammas=frontier_gammas,
                    frontier_taus=frontier_taus, frontier_steps=frontier_steps, seed=seed),
    metrics={"infae_distilled": {"test": summary_test}, "infae_control": {"test": control_tuning.test_metrics}},
    timings_s={"load": t_load, "distill": t_distill, "releases": t_releases, "fig8": t_fig8, "fig9": t_fig9,
               "eval_summary": t_eval, "frontier": t_frontier},
    extra={
        "fig8": fig8,
        "fig9": fig9,
        "prediction_by_missing": by_m,
        "headline": headline,
        "claim": claim,
        "published_users": n_published,
        "distill_config": config.to_dict(),
        "distill_from_cache": from_cache,
        "distill_run_timings_s": result.timings,  # of the run that distilled the summary (cached: the original)
        "distill_best_lambda": result.best_lambda,
        "control_users": len(others),
        "control_lambda": control_tuning.best_value,
        "summary_targets_among_initial_users": int(initial.sum()),
        "frontier": dict(frontier.to_dict(), verdict=frontier_verdict(frontier)),
    },
)
print(f"results written to {path}")

# %% [markdown]
# ## References
# - N. Sachdeva, M. P. Dhaliwal, C.-J. Wu, J. McAuley. *Infinite Recommendation Networks: A Data-Centric
#   Approach.* NeurIPS 2022, Appendix B.6. Code: `noveens/distill_cf`, `noveens/infinite_ae_cf`.
# - A. Narayanan, V. Shmatikov. *Robust De-anonymization of Large Sparse Datasets.* IEEE S&P 2008.
