r"""Langevin with noise :math:`\varepsilon` and drift :math:`\varepsilon^2` samples :math:`e^{-2U}`.

Reproduces seed 002 (``shared/seeds/002_*.txt``, section 2.1.4, eqs. 35-38): the text
derives the update

.. math:: x_{k+1} = x_k - \varepsilon^2 \nabla U(x_k) + \varepsilon\, \mu, \qquad
          \mu \sim \mathcal N(0, I),

shows (correctly) that its stationary law is :math:`\propto \exp(-2U)`, then sets
:math:`U = -\log P` and concludes :math:`\exp(2 \log P) = e^2 P`, "stationary distribution
equals our target".

Where the seed text is wrong
----------------------------
:math:`\exp(2\log P) = P^2`, not :math:`e^2 P`. The update samples :math:`P^2` (a
*tempered* target at temperature :math:`T = 1/2`), not :math:`P`. In general a Langevin
step with drift step :math:`h` and noise standard deviation :math:`s` has temperature
:math:`T = s^2 / (2h)`; here :math:`s = \varepsilon`, :math:`h = \varepsilon^2`, so
:math:`T = 1/2`. The text's own Table-1 sampler :math:`x - (\varepsilon^2/2)\nabla E +
\varepsilon z` has :math:`T = 1` and is right.

What this script shows
----------------------
On a Gaussian :math:`U(x) = \tfrac12 x^\top \operatorname{diag}(1/s_i^2)\, x` (so
:math:`P^2` has half the variance), ``num_chains`` independent chains of

* the text's update written out by hand,
* :func:`ebm_ppl.kernels.ula` with ``step_size=eps**2, temperature=0.5`` (the same
  update: :math:`\sqrt{2 h T} = \varepsilon`), and
* :func:`ebm_ppl.kernels.ula` with ``step_size=eps**2/2, temperature=1`` (the
  :math:`T=1` sampler),

give variance ratios (chain variance / :math:`s_i^2`) of :math:`\approx 1/2`, :math:`1/2`
and :math:`1`. The exact discrete-time values are :math:`1/(2 - \varepsilon^2/s^2)` and
:math:`1/(1 - \varepsilon^2/(4 s^2))` (AR(1) chains), which the z-scores test.

Run ``python examples/05_langevin_temperature.py [--quick] [--out DIR]``.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from collections.abc import Sequence  # noqa: E402
from typing import Any  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from _common import Timer, critical_z, parse_args, save_json  # noqa: E402
from scipy import stats  # noqa: E402

import ebm_ppl  # noqa: E402

NAME = "05_langevin_temperature"
#: Standard deviations of the Gaussian P = exp(-U) (per coordinate).
SCALES = np.array([1.0, 2.0])
#: The text's epsilon.
EPS = 0.1


def potential_u(x: jax.Array) -> jax.Array:
    """``U(x) = sum(x_i^2 / (2 s_i^2))``, so ``P = exp(-U)`` is ``N(0, diag(s^2))``."""
    return 0.5 * jnp.sum(x**2 / jnp.asarray(SCALES) ** 2)


@jax.jit(static_argnames=("num_steps",))
def kernel_chains(kernel: Any, pot: Any, x0: jax.Array, key: jax.Array,
                  num_steps: int) -> jax.Array:
    """Final positions of independent chains of an ebm_ppl ``kernel``."""
    states = jax.vmap(lambda x: kernel.init(x, pot.logdensity_fn))(x0)

    def body(states, step_key):
        keys = jax.random.split(step_key, x0.shape[0])
        states, _ = jax.vmap(lambda k, s: kernel.step(k, s, pot.logdensity_fn))(keys, states)
        return states, None

    return jax.lax.scan(body, states, jax.random.split(key, num_steps))[0].position


@jax.jit(static_argnames=("num_steps",))
def text_chains(x0: jax.Array, key: jax.Array, num_steps: int) -> jax.Array:
    """The text's update ``x - eps^2 grad U(x) + eps * mu``, by hand."""
    grad_u = jax.vmap(jax.grad(potential_u))

    def body(x, step_key):
        noise = jax.random.normal(step_key, x.shape)
        return x - EPS**2 * grad_u(x) + EPS * noise, None

    return jax.lax.scan(body, x0, jax.random.split(key, num_steps))[0]


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the example; returns the variance ratios and their z-scores."""
    args = parse_args(NAME, __doc__.splitlines()[0], argv)
    num_chains = 10_000 if args.quick else 100_000
    pot = ebm_ppl.Potential.from_energy(potential_u, example=jnp.zeros(2))
    key_x0, key_run = jax.random.split(jax.random.key(args.seed))
    x0 = jax.random.normal(key_x0, (num_chains, 2)) * jnp.asarray(SCALES)
    # the chains start at P = N(0, s^2); the variance of the text's chain relaxes to
    # P^2's by the factor (1 - eps^2/s^2)^2 ~ exp(-2 eps^2/s^2) per step: 10 e-folds
    num_steps = int(np.ceil(10 * SCALES.max() ** 2 / (2 * EPS**2)))
    a = EPS**2 / SCALES**2
    chains = {
        "text update (eps, eps^2)": (lambda: text_chains(x0, key_run, num_steps=num_steps),
                                     1.0 / (2.0 - a)),
        "ula(eps^2, temperature=0.5)": (lambda: kernel_chains(
            ebm_ppl.kernels.ula(EPS**2, temperature=0.5), pot, x0, key_run,
            num_steps=num_steps), 1.0 / (2.0 - a)),
        "ula(eps^2/2, temperature=1)": (lambda: kernel_chains(
            ebm_ppl.kernels.ula(EPS**2 / 2, temperature=1.0), pot, x0, key_run,
            num_steps=num_steps), 1.0 / (1.0 - a / 4.0)),
    }
    z_crit = critical_z(2 * len(chains))
    results: dict[str, Any] = {"num_chains": num_chains, "eps": EPS, "z_critical": z_crit,
                               "num_steps": num_steps}
    draws_by_name = {}
    with Timer() as timer:
        for name, (run, exact_ratio) in chains.items():
            draws = np.asarray(run())
            draws_by_name[name] = draws
            ratio = draws.var(0, ddof=1) / SCALES**2
            se = exact_ratio * np.sqrt(2.0 / (num_chains - 1))
            results[name] = {"variance_ratio": ratio, "exact_ratio": exact_ratio,
                             "z": (ratio - exact_ratio) / se,
                             "z_vs_one": (ratio - 1.0) / se}
    print(f"U = x^T diag(1/s^2) x / 2 with s = {SCALES.tolist()}; eps = {EPS}; "
          f"{num_chains} chains x {num_steps} steps ({timer.seconds:.1f} s); "
          f"critical z {z_crit:.2f}")
    for name in chains:
        r = results[name]
        print(f"  {name:30s} var/s^2 = {np.round(r['variance_ratio'], 4).tolist()}  exact "
              f"{np.round(r['exact_ratio'], 4).tolist()}  z {np.round(r['z'], 2).tolist()}  "
              f"z vs 1 {np.round(r['z_vs_one'], 1).tolist()}")
    _plot(draws_by_name, args.out)
    save_json(results, args.out)
    return results


def _plot(draws_by_name: dict[str, np.ndarray], out: Any) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for j, ax in enumerate(axes):
        s = SCALES[j]
        grid = np.linspace(-4 * s, 4 * s, 300)
        for (name, draws), color in zip(draws_by_name.items(), ("C0", "C2", "C1")):
            ax.hist(draws[:, j], bins=80, density=True, histtype="step", color=color,
                    label=name, lw=1.4 if color != "C2" else 2.5, alpha=0.9)
        ax.plot(grid, stats.norm.pdf(grid, 0, s), "k-", label=r"$P = e^{-U}$ (claimed)")
        ax.plot(grid, stats.norm.pdf(grid, 0, s / np.sqrt(2)), "k--",
                label=r"$P^2 \propto e^{-2U}$")
        ax.set_title(f"coordinate {j + 1} (s = {s:g})")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "langevin_temperature.png", dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
