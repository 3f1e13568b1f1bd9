r"""Complete a digit from its top half: a learned energy as the prior of a NumPyro model.

Issue #29, item 5. The posterior over the missing half of a held-out digit spans several
digit classes. From one start, parallel tempering (PT) mixes across them far better than
MALA run for the same number of steps; MALA given PT's gradient budget does about as well
as PT on this posterior (recorded, not claimed; see the README).

1. **Data.** Scikit-learn's 8×8 digits (:func:`ebm_ppl.datasets.digits`, pixels in
   [0, 1]); 10 % held out (split drawn with ``--seed``).
2. **Prior.** An MLP energy :math:`E_\theta` (256×256 swish units, plus
   :math:`0.05\|x\|^2`) trained on the other 90 % by denoising score matching at
   :math:`\sigma = 0.05` (:func:`ebm_ppl.objectives.denoising_score_matching`,
   :func:`ebm_ppl.fit`; Adam, cosine decay from 2e-3, batch 128). Its law
   :math:`e^{-E_\theta}` models the digits blurred by :math:`\mathcal N(0, \sigma^2 I)`;
   the DSM energy also gives Tweedie's denoiser
   :math:`\hat x = x - \sigma^2 \nabla E_\theta(x)`, the mean of the clean digit given a
   draw, which the figures show and the classifier reads. Single-scale DSM trains in
   seconds here; :math:`\sigma = 0.05` is a fifth of a pixel's standard deviation
   (0.27, root mean over pixels); 0.1 and 0.2, tried first, gave visibly noisier draws.
3. **Model.** ``x ~ EnergyDistribution(E_theta)`` (the 64 pixels),
   ``obs ~ Normal(x[:32], 0.05)`` observed: the top four rows of one held-out digit.
   The digit is the held-out one whose top half is the most ambiguous for a logistic
   regression trained on the top halves of the training digits (largest entropy of
   its class probabilities): chosen before, and without, any sampling.
4. **Samplers**, all from the same start (every chain at the held-out digit itself, a
   point in one class), 8 chains, :func:`ebm_ppl.sample` on
   :meth:`ebm_ppl.Potential.from_model`: *MALA, same steps* (dual-averaged step,
   ``W`` warm-up steps, ``N`` draws); *MALA, same gradients* (``8W`` warm-up steps,
   ``8N`` steps thinned by 8); *PT*: :func:`ebm_ppl.kernels.parallel_tempering` of MALA
   over 8 temperatures up to :math:`T_{\max} = 3` (its default warm-up tunes each
   replica's step and the ladder), ``W`` warm-up steps and ``N`` draws, 8 gradients per
   step. :math:`T_{\max} = 3` gives swap rates near 0.5 in these 64 dimensions; with
   :math:`T_{\max} = 20` and 8 temperatures only 4–9 % of the swaps were accepted.
5. **Classes.** A logistic regression trained on the clean training digits labels each
   denoised draw. Per sampler: the weight of each class with its MCSE (ArviZ, from the
   ESS of the class indicator), the classes *visited* (weight above 1 %) pooled and per
   chain, R-hat (ArviZ, rank-normalised) of the class indicators, the largest over the
   classes any sampler visits (NaN for a class whose indicator is constant in every
   chain), and of the 64 pixels; the smallest bulk ESS of the indicators of PT's main
   classes (weight above 5 %); gradient evaluations, warm-up included. A report of the
   PT run (:func:`ebm_ppl.report`, with the figures below as ``images``) goes to
   ``OUT/report/``.

The claims (``examples/README.md``, asserted by ``tests/test_examples.py``): the PT
posterior spans several classes; PT and MALA with the same gradient budget agree on the
class weights; run for the same number of steps from the same start, PT's chains agree
better than MALA's (class R-hat) and each visits more classes.

Run ``python examples/10_digits_completion.py [--quick] [--out DIR] [--seed N]``.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import warnings  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from typing import Any  # noqa: E402

import arviz as az  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import numpyro  # noqa: E402
import numpyro.distributions as dist  # noqa: E402
import optax  # noqa: E402
from _common import Timer, critical_z, parse_args, save_json  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

import ebm_ppl  # noqa: E402

NAME = "10_digits_completion"
ENERGY = ebm_ppl.nn.mlp_energy((256, 256), "swish", quadratic=0.1)
#: DSM noise level (pixel units; pixels are in [0, 1]) and the learning-rate schedule.
SIGMA = 0.05
LEARNING_RATE = 2e-3
#: Observed pixels (the top four rows) and the sd of their Gaussian noise.
TOP = 32
NOISE_SD = 0.05
#: Held-out fraction, chains, parallel tempering's ladder.
HELD_OUT = 0.1
NUM_CHAINS = 8
NUM_TEMPERATURES = 8
MAX_TEMPERATURE = 3.0
#: A class is *visited* when more than this fraction of the pooled draws fall in it.
VISITED = 0.01
#: The three samplers, in the order of the tables and figures.
SAMPLERS = ("mala", "mala_same_gradients", "pt")
LABELS = {"mala": "MALA, same steps", "mala_same_gradients": "MALA, same gradients",
          "pt": f"PT ({NUM_TEMPERATURES} temperatures)"}


def split(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_train, y_train, x_test, y_test)``: a random 10 % of the digits held out."""
    x, y = ebm_ppl.datasets.digits(scale="unit", return_labels=True)
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(HELD_OUT * len(x)))
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


def choose_digit(x_train: np.ndarray, y_train: np.ndarray,
                 x_test: np.ndarray) -> tuple[int, np.ndarray]:
    """The held-out digit whose top half a top-half classifier finds most ambiguous."""
    top_clf = LogisticRegression(max_iter=3000).fit(x_train[:, :TOP], y_train)
    prob = top_clf.predict_proba(x_test[:, :TOP])
    entropy = -np.sum(prob * np.log(np.clip(prob, 1e-12, None)), axis=1)
    index = int(np.argmax(entropy))
    return index, prob[index].astype(np.float64)


def make_model(params: Any):
    """``x ~ EnergyDistribution(E_theta)``; the top half of ``x`` observed with noise."""
    prior = ebm_ppl.numpyro.EnergyDistribution(ENERGY, params, event_shape=(64,))

    def model(top_half: jax.Array) -> None:
        x = numpyro.sample("x", prior)
        numpyro.sample("obs", dist.Normal(x[:TOP], NOISE_SD), obs=top_half)

    return model


def denoise(params: Any, draws: np.ndarray) -> np.ndarray:
    """Tweedie's denoiser ``x - sigma^2 grad E(x)`` of every draw ``(..., 64)``."""
    grad = jax.jit(jax.vmap(jax.grad(lambda x: ENERGY(params, x))))
    flat = draws.reshape(-1, 64)
    return (flat - SIGMA**2 * np.asarray(grad(jnp.asarray(flat)))).reshape(draws.shape)


def _rhat(series: np.ndarray) -> float:
    """Rank-normalised R-hat of ``(chain, draw)``; NaN for a series constant everywhere."""
    return float(az.rhat(series)) if np.ptp(series) > 0 else float("nan")


def class_statistics(labels: np.ndarray, classes: Sequence[int]) -> dict[str, Any]:
    """Weights, visited classes, R-hat over ``classes`` and per-chain weights."""
    weights = np.bincount(labels.ravel(), minlength=10) / labels.size
    rhats = {int(k): _rhat((labels == k).astype(float)) for k in classes}
    finite = [v for v in rhats.values() if np.isfinite(v)]
    per_chain = np.stack([np.bincount(row, minlength=10) / row.size for row in labels])
    indicators = [(labels == k).astype(float) for k in range(10)]
    mcse = [float(az.mcse(ind)) if np.ptp(ind) > 0 else 0.0 for ind in indicators]
    return {"weights": weights, "mcse": np.asarray(mcse),
            "visited": int(np.sum(weights > VISITED)),
            "visited_classes": [int(k) for k in np.flatnonzero(weights > VISITED)],
            "visited_per_chain": np.sum(per_chain > VISITED, axis=1),
            "rhat_classes": rhats, "rhat_class_max": max(finite) if finite else float("nan"),
            "per_chain_weights": per_chain,
            "chains_in_one_class": int(np.sum(per_chain.max(axis=1) > 0.99))}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Train the prior, pick the digit, sample three ways, classify; returns the results."""
    args = parse_args(NAME, __doc__.splitlines()[0], argv)
    with Timer() as total:
        results = _run(args)
    results["total_seconds"] = total.seconds
    print(f"total {total.seconds:.0f} s")
    save_json(results, args.out)
    return results


def _run(args: Any) -> dict[str, Any]:
    num_steps = 3_000 if args.quick else 10_000
    num_warmup, num_samples = (1_000, 1_000) if args.quick else (2_000, 4_000)
    x_train, y_train, x_test, y_test = split(args.seed)
    with Timer() as t_fit:
        fit = ebm_ppl.fit(ENERGY, ENERGY.init(jax.random.key(args.seed), 64), x_train,
                          ebm_ppl.objectives.denoising_score_matching(SIGMA),
                          optax.adam(optax.cosine_decay_schedule(LEARNING_RATE, num_steps,
                                                                 0.1)),
                          num_steps=num_steps, batch_size=128, seed=args.seed,
                          progress=False, validation_data=x_test)
    params = fit.params
    clf = LogisticRegression(max_iter=3000).fit(x_train, y_train)
    index, top_prob = choose_digit(x_train, y_train, x_test)
    digit, label = x_test[index], int(y_test[index])
    print(f"DSM prior: {num_steps} steps in {t_fit.seconds:.1f} s; classifier accuracy on "
          f"held-out digits {clf.score(x_test, y_test):.3f}; digit {index} (class {label}), "
          f"top-half classifier {np.round(top_prob, 2).tolist()}")

    pot = ebm_ppl.Potential.from_model(make_model(params), jnp.asarray(digit[:TOP]))
    init = {"x": jnp.tile(jnp.asarray(digit), (NUM_CHAINS, 1))}
    mala = ebm_ppl.kernels.mala(SIGMA**2 / 2)
    k = NUM_TEMPERATURES
    settings = {  # kernel, warm-up steps, draws, thin, gradients per step
        "mala": (mala, num_warmup, num_samples, 1, 1),
        "mala_same_gradients": (mala, k * num_warmup, num_samples, k, 1),
        "pt": (ebm_ppl.kernels.parallel_tempering(mala, num_temperatures=k,
                                                  max_temperature=MAX_TEMPERATURE),
               num_warmup, num_samples, 1, k),
    }
    runs, labels, completions, results = {}, {}, {}, {}
    for name, (kernel, warmup, draws, thin, per_step) in settings.items():
        with Timer() as timer, warnings.catch_warnings():
            warnings.simplefilter("ignore", ebm_ppl.SamplingWarning)  # R-hat is our topic
            runs[name] = ebm_ppl.sample(pot, kernel, init, num_samples=draws,
                                        num_warmup=warmup, num_chains=NUM_CHAINS, thin=thin,
                                        seed=args.seed, progress=False)
        x = runs[name].posterior["x"].values
        completions[name] = denoise(params, x)
        labels[name] = clf.predict(completions[name].reshape(-1, 64)).reshape(x.shape[:2])
        results[name] = {
            "gradients": per_step * (warmup + draws * thin) * NUM_CHAINS,
            "seconds": timer.seconds, "steps": warmup + draws * thin,
            "rhat_pixel_max": float(np.nanmax(az.rhat(runs[name])["x"].values)),
            "acceptance_rate": float(runs[name].sample_stats["acceptance_rate"].mean()),
        }
    union = sorted({int(c) for lab in labels.values() for c in np.unique(lab)
                    if np.mean(lab == c) > VISITED})
    for name in SAMPLERS:
        results[name].update(class_statistics(labels[name], union))
    pt_main = [c for c in union if results["pt"]["weights"][c] > 0.05]
    for name in SAMPLERS:
        indicators = [(labels[name] == c).astype(float) for c in pt_main]
        ess = [float(az.ess(ind, method="bulk")) if np.ptp(ind) > 0 else 0.0
               for ind in indicators]
        results[name]["ess_main_classes_min"] = min(ess)
        results[name]["ess_per_1000_gradients"] = 1000 * min(ess) / results[name]["gradients"]
    a, b = results["pt"], results["mala_same_gradients"]
    z = [(a["weights"][c] - b["weights"][c]) / np.hypot(a["mcse"][c], b["mcse"][c])
         for c in union]
    results["z_weights_pt_vs_mala_same_gradients"] = np.asarray(z)
    results["z_critical"] = critical_z(len(union))
    stats = runs["pt"].sample_stats
    results["pt"]["swap_acceptance"] = np.nanmean(stats["swap_acceptance"].values, axis=(0, 1))
    results["pt"]["round_trips"] = float(np.mean(stats["round_trips"].values[:, -1]))
    results.update({
        "digit_index": index, "digit_label": label, "top_half_classifier": top_prob,
        "classes_compared": union, "pt_main_classes": pt_main,
        "classifier_accuracy": float(clf.score(x_test, y_test)),
        "fit_seconds": t_fit.seconds, "num_steps": num_steps,
        "dsm_final_loss": float(np.mean(fit.history["loss"][-100:])),
        "num_warmup": num_warmup, "num_samples": num_samples, "num_chains": NUM_CHAINS,
    })
    _print_table(results)
    figures = [("Posterior completions", _plot_completions(completions, labels, digit, args.out)),
               ("Class weights", _plot_weights(results, args.out)),
               ("Class of every draw, per chain", _plot_class_traces(labels, args.out))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ebm_ppl.SamplingWarning)
        index_html = ebm_ppl.report(
            runs["pt"], args.out / "report", pot=pot, title="Digit completion: PT posterior",
            seed=args.seed, images=figures, notes=[("Model", _note(results))])
    results["report"] = str(index_html)
    return results


def _note(r: dict[str, Any]) -> str:
    weights = ", ".join(f"{c}: {r['pt']['weights'][c]:.3f}" for c in r["classes_compared"])
    return (f"x ~ EnergyDistribution(E_theta) over 64 pixels (DSM, sigma = {SIGMA}); the top "
            f"{TOP} pixels of held-out digit {r['digit_index']} (class {r['digit_label']}) "
            f"observed with noise sd {NOISE_SD}. Class weights of the cold chain (denoised "
            f"draws, logistic regression): {weights}. The pixel R-hat and ESS in the tables "
            "are over the draws x; the class R-hat is in results.json.")


def _print_table(r: dict[str, Any]) -> None:
    print("| sampler | gradients | s | classes visited | class R-hat max | pixel R-hat max "
          "| min ESS main classes | chains in one class |")
    for name in SAMPLERS:
        s = r[name]
        print(f"| {LABELS[name]} | {s['gradients']} | {s['seconds']:.1f} | {s['visited']} "
              f"{s['visited_classes']} | {s['rhat_class_max']:.3f} | {s['rhat_pixel_max']:.3f} "
              f"| {s['ess_main_classes_min']:.0f} | {s['chains_in_one_class']} |")
    print("class weights:", {LABELS[n]: np.round(r[n]["weights"], 3).tolist() for n in SAMPLERS})
    print("classes visited per chain:", {LABELS[n]: r[n]["visited_per_chain"].tolist()
                                         for n in SAMPLERS})
    print(f"z of the weights, PT vs MALA same gradients (classes {r['classes_compared']}): "
          f"{np.round(r['z_weights_pt_vs_mala_same_gradients'], 2).tolist()} "
          f"(critical {r['z_critical']:.2f})")
    print(f"PT swap acceptance {np.round(r['pt']['swap_acceptance'], 2).tolist()}, "
          f"round trips per chain {r['pt']['round_trips']:.1f}")


def _image(ax: Any, pixels: np.ndarray, title: str = "") -> None:
    ax.imshow(np.clip(pixels, 0, 1).reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=7, pad=2)


def _plot_completions(completions: dict[str, np.ndarray], labels: dict[str, np.ndarray],
                      digit: np.ndarray, out: Any, chains: int = 3, columns: int = 10) -> Any:
    """Rows: the first ``chains`` chains of each sampler; columns: draws evenly in time."""
    rows = 1 + chains * len(SAMPLERS)
    fig, axes = plt.subplots(rows, columns + 1, figsize=(0.8 * (columns + 1), 0.85 * rows))
    observed = digit.copy()
    observed[TOP:] = np.nan
    for ax in axes[0]:
        ax.axis("off")
    _image(axes[0, 0], np.nan_to_num(observed, nan=0.0), "observed")
    axes[0, 0].axis("on")
    axes[0, 0].axhspan(3.5, 7.5, color="C0", alpha=0.25)
    _image(axes[0, 1], digit, "held-out digit")
    axes[0, 1].axis("on")
    for s, name in enumerate(SAMPLERS):
        draws, lab = completions[name], labels[name]
        steps = np.linspace(0, draws.shape[1] - 1, columns).astype(int)
        for c in range(chains):
            row = 1 + s * chains + c
            axes[row, 0].axis("off")
            axes[row, 0].text(1.0, 0.5, f"{LABELS[name]}\nchain {c}" if c == 0 else f"chain {c}",
                              ha="right", va="center", fontsize=7, transform=axes[row, 0].transAxes)
            for j, t in enumerate(steps):
                _image(axes[row, j + 1], draws[c, t], str(lab[c, t]))
    fig.suptitle("Denoised posterior draws (class above each), draws evenly spaced in time",
                 fontsize=9)
    fig.tight_layout()
    path = out / "completions.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plot_weights(r: dict[str, Any], out: Any) -> Any:
    fig, ax = plt.subplots(figsize=(7, 3.2))
    width = 0.8 / len(SAMPLERS)
    for s, name in enumerate(SAMPLERS):
        ax.bar(np.arange(10) + (s - 1) * width, r[name]["weights"], width,
               label=f"{LABELS[name]} ({r[name]['gradients'] / 1e3:.0f}k gradients)")
    ax.axhline(VISITED, color="k", lw=0.6, ls=":", label="'visited' threshold")
    ax.set_xticks(range(10))
    ax.set_xlabel(f"class of the completion (held-out digit: {r['digit_label']})")
    ax.set_ylabel("posterior weight")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = out / "class_weights.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _plot_class_traces(labels: dict[str, np.ndarray], out: Any) -> Any:
    fig, axes = plt.subplots(len(SAMPLERS), 1, figsize=(8, 1.3 * len(SAMPLERS) + 0.8),
                             sharex=True, layout="constrained")
    for ax, name in zip(axes, SAMPLERS):
        image = ax.imshow(labels[name], aspect="auto", cmap="tab10", vmin=-0.5, vmax=9.5,
                          interpolation="nearest")
        ax.set_ylabel("chain", fontsize=8)
        ax.set_title(LABELS[name], fontsize=8)
    axes[-1].set_xlabel("draw")
    fig.colorbar(image, ax=axes, ticks=range(10), label="class")
    path = out / "class_traces.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


if __name__ == "__main__":
    main()
