r"""ebm_ppl kernels as :class:`numpyro.infer.mcmc.MCMCKernel` s.

The adapters copy the shapes of NumPyro's own ``HMC``: the random key lives in the
state, ``sample_field`` is ``"z"``, :meth:`~EBMKernel.init` accepts one key or a batch
of keys (``chain_method="vectorized"``), a model is turned into a potential over its
unconstrained space with :func:`numpyro.infer.util.initialize_model` (respecting
``init_strategy``), and ``potential_energy``, ``accept_prob`` and ``diverging`` are
collected by default, so :func:`arviz.from_numpyro` fills ``lp``, ``acceptance_rate``
and ``diverging`` (plus ``step_size`` for kernels that have one).

Warm-up: NumPyro's :class:`~numpyro.infer.MCMC` calls :meth:`~EBMKernel.sample`
``num_warmup + num_samples`` times and drops the first ``num_warmup`` states. Kernels
with a step size and an accept/reject step (MALA, HMC, NUTS, Barker, or any BlackJAX
algorithm taking ``step_size``) adapt it during those warm-up iterations by dual
averaging (Hoffman & Gelman 2014, sec. 3.2.1; BlackJAX
``dual_averaging_adaptation``) towards a target acceptance rate, then freeze it at the
averaged value. ULA and MH use the hyper-parameters as given. Nothing else (mass
matrix, proposal scale) is adapted.

Everything numeric (iteration counter, step size, adaptation state, key) is in the
state; the kernel object only keeps what the model defines (its potential and
``postprocess_fn`` generators), as NumPyro's ``HMC`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import blackjax
import jax
import jax.numpy as jnp
from blackjax.adaptation.step_size import dual_averaging_adaptation
from numpyro.infer import init_to_uniform
from numpyro.infer.mcmc import MCMCKernel
from numpyro.infer.util import ParamInfo, initialize_model
from numpyro.util import identity, is_prng_key

from ebm_ppl import kernels as _kernels
from ebm_ppl._tree import tree_all_finite
from ebm_ppl._types import Array, ArrayTree, LogDensityFn, PRNGKey
from ebm_ppl._validation import check_positive
from ebm_ppl.kernels.base import Kernel

__all__ = ["EBMKernel", "EBMKernelState", "ULA", "MH", "BlackJAXKernel"]

#: BlackJAX algorithms mapped onto the ebm_ppl adapters (NaN-safe info, own factories).
_ADAPTED = {"mala": _kernels.mala, "hmc": _kernels.hmc, "nuts": _kernels.nuts,
            "barker": _kernels.barker}


class EBMKernelState(NamedTuple):
    """State of an :class:`EBMKernel` (one chain; leading chain axis when vectorized).

    Attributes
    ----------
    i
        Iteration counter (warm-up iterations included).
    z
        Current position (a dict of unconstrained site values for a model).
    potential_energy
        :math:`-\\log p(z)` (NumPyro sign; ArviZ's ``lp`` is its negative).
    accept_prob
        Acceptance probability of the last transition.
    mean_accept_prob
        Running mean of ``accept_prob`` (restarted after warm-up).
    diverging
        Whether the last transition diverged (non-finite density, energy error...).
    step_size
        Current step size (adapted during warm-up); NaN for kernels without one.
    num_warmup
        Number of warm-up iterations (adaptation stops after them).
    adapt_state
        Dual-averaging state, or ``None`` when the step size is not adapted.
    inner
        State of the wrapped kernel.
    rng_key
        Key of the next transition.
    """

    i: Array
    z: ArrayTree
    potential_energy: Array
    accept_prob: Array
    mean_accept_prob: Array
    diverging: Array
    step_size: Array
    num_warmup: Array
    adapt_state: Any
    inner: Any
    rng_key: PRNGKey


class EBMKernel(MCMCKernel):
    """Base class: a Markov kernel run by :class:`numpyro.infer.MCMC`.

    Subclasses set :attr:`_kernel` (an ebm_ppl :class:`~ebm_ppl.kernels.Kernel`) or
    override :meth:`_inner_init` and :meth:`_inner_step`.

    Parameters
    ----------
    model
        A NumPyro model; exactly one of ``model`` and ``potential_fn`` is given.
    potential_fn
        ``potential_fn(z) -> -log p(z)`` (NumPyro sign) on any pytree ``z``;
        ``MCMC.run`` then needs ``init_params``.
    init_strategy
        NumPyro init strategy for a model (``init_to_uniform`` by default, as NumPyro).
    adapt_step_size
        Adapt the step size by dual averaging during warm-up (only for kernels that
        have a step size and an accept/reject step).
    target_accept_prob
        Target of the adaptation; ``None`` uses the kernel's own target.

    Raises
    ------
    ValueError
        If both or neither of ``model`` and ``potential_fn`` are given.
    TypeError
        If the one given is not callable.
    """

    _kernel: Kernel
    _adaptable: bool = False

    def __init__(
        self,
        model: Callable | None = None,
        potential_fn: Callable | None = None,
        *,
        init_strategy: Callable = init_to_uniform,
        adapt_step_size: bool = True,
        target_accept_prob: float | None = None,
    ) -> None:
        if model is None and potential_fn is None:
            raise ValueError(
                f"{type(self).__name__} needs a model or a potential_fn, got neither"
            )
        if model is not None and potential_fn is not None:
            raise ValueError(
                f"{type(self).__name__} takes exactly one of model and potential_fn, got both"
            )
        given, name = (model, "model") if model is not None else (potential_fn, "potential_fn")
        if not callable(given):
            raise TypeError(f"{name} must be callable, got {type(given).__name__}")
        if not callable(init_strategy):
            raise TypeError(
                f"init_strategy must be a NumPyro init strategy, got {init_strategy!r}"
            )
        if target_accept_prob is not None and not 0.0 < target_accept_prob < 1.0:
            raise ValueError(
                f"target_accept_prob must be in (0, 1), got {target_accept_prob!r}"
            )
        self._model = model
        self._potential_fn = potential_fn
        self._init_strategy = init_strategy
        self._adapt_step_size = bool(adapt_step_size)
        self._target_accept_prob = target_accept_prob
        # Set by init() from the model (as numpyro.infer.HMC does).
        self._potential_fn_gen: Callable | None = None
        self._postprocess_fn_gen: Callable | None = None

    # ------------------------------------------------------------------ properties
    @property
    def model(self) -> Callable | None:
        """The NumPyro model (``None`` when built from a ``potential_fn``)."""
        return self._model

    @property
    def sample_field(self) -> str:
        """``"z"``: the position in the state."""
        return "z"

    @property
    def default_fields(self) -> tuple[str, ...]:
        """Fields collected by ``MCMC.run`` (ArviZ: ``lp``, ``acceptance_rate``...)."""
        fields = ("z", "potential_energy", "accept_prob", "diverging")
        return fields + (("step_size",) if self._has_step_size else ())

    @property
    def _has_step_size(self) -> bool:
        return "step_size" in self._kernel.parameters

    @property
    def _adapts(self) -> bool:
        return self._adapt_step_size and self._adaptable and self._has_step_size

    @property
    def _target(self) -> float:
        if self._target_accept_prob is not None:
            return self._target_accept_prob
        return self._kernel.target_acceptance_rate

    def get_diagnostics_str(self, state: EBMKernelState) -> str:
        """Progress-bar text: step size and mean acceptance probability."""
        text = f"acc. prob={float(state.mean_accept_prob):.2f}"
        if self._has_step_size:
            text = f"step size {float(state.step_size):.2e}. " + text
        return text

    def postprocess_fn(self, model_args: tuple, model_kwargs: dict) -> Callable:
        """Map unconstrained ``z`` to the model's constrained sites (identity otherwise)."""
        if self._postprocess_fn_gen is None:
            return identity
        return self._postprocess_fn_gen(*model_args, **model_kwargs)

    # ------------------------------------------------------------------ inner kernel
    def _logdensity_fn(self, model_args: tuple, model_kwargs: dict) -> LogDensityFn:
        if self._potential_fn is not None:
            potential_fn = self._potential_fn
        else:
            if self._potential_fn_gen is None:
                raise RuntimeError(f"{type(self).__name__}.init must be called before sample")
            potential_fn = self._potential_fn_gen(*model_args, **model_kwargs)
        return lambda z: -potential_fn(z)

    def _inner_init(self, position: ArrayTree, logdensity_fn: LogDensityFn,
                    rng_key: PRNGKey) -> Any:
        return self._kernel.init(position, logdensity_fn)

    def _inner_step(self, rng_key: PRNGKey, inner: Any, logdensity_fn: LogDensityFn,
                    step_size: Array) -> tuple[Any, Any]:
        kernel = self._kernel.replace(step_size=step_size) if self._has_step_size \
            else self._kernel
        return kernel.step(rng_key, inner, logdensity_fn)

    def _initial_step_size(self) -> Array:
        if self._has_step_size:
            return jnp.asarray(self._kernel.parameters["step_size"], jnp.result_type(float))
        return jnp.asarray(jnp.nan, jnp.result_type(float))

    @staticmethod
    def _potential(inner: Any, logdensity_fn: LogDensityFn) -> Array:
        logdensity = getattr(inner, "logdensity", None)
        if logdensity is None:
            logdensity = logdensity_fn(inner.position)
        return -logdensity

    # ------------------------------------------------------------------ MCMCKernel
    def init(
        self,
        rng_key: PRNGKey,
        num_warmup: int,
        init_params: ArrayTree | None = None,
        model_args: tuple = (),
        model_kwargs: dict | None = None,
    ) -> EBMKernelState:
        """Initial state; a batch of keys gives a batch of chains (vectorized).

        Parameters
        ----------
        rng_key
            One key, or a batch of ``num_chains`` keys (``chain_method="vectorized"``).
        num_warmup
            Warm-up iterations (step-size adaptation runs during them).
        init_params
            Initial unconstrained position (leading chain axis for a batch of keys);
            drawn with ``init_strategy`` for a model when ``None``; required with
            ``potential_fn``.
        model_args, model_kwargs
            Arguments of the model.

        Raises
        ------
        ValueError
            If ``init_params`` is missing for a ``potential_fn``, or the log density is
            not finite at the initial position.
        """
        model_kwargs = {} if model_kwargs is None else model_kwargs
        vectorized = not is_prng_key(rng_key)
        if vectorized:
            rng_key, key_init_model = jnp.swapaxes(jax.vmap(jax.random.split)(rng_key), 0, 1)
        else:
            rng_key, key_init_model = jax.random.split(rng_key)
        if self._model is not None:
            info = initialize_model(
                key_init_model,
                self._model,
                init_strategy=self._init_strategy,
                dynamic_args=True,
                model_args=model_args,
                model_kwargs=model_kwargs,
            )
            self._potential_fn_gen = info.potential_fn
            self._postprocess_fn_gen = info.postprocess_fn
            if init_params is None:
                init_params = info.param_info.z
        elif init_params is None:
            raise ValueError(
                f"init_params must be given to MCMC.run when {type(self).__name__} is built "
                "from a potential_fn, got None"
            )
        if isinstance(init_params, ParamInfo):
            init_params = init_params.z
        logdensity_fn = self._logdensity_fn(model_args, model_kwargs)
        init_one = self._init_one(logdensity_fn, int(num_warmup))
        state = jax.vmap(init_one)(init_params, rng_key) if vectorized \
            else init_one(init_params, rng_key)
        potential = state.potential_energy
        if not isinstance(potential, jax.core.Tracer) and not bool(
            jnp.all(jnp.isfinite(potential))
        ):
            raise ValueError(
                "the log density must be finite at the initial position, got potential "
                f"energy {potential}; pass other init_params or init_strategy"
            )
        return state

    def _init_one(self, logdensity_fn: LogDensityFn, num_warmup: int) -> Callable:
        def init_one(position: ArrayTree, rng_key: PRNGKey) -> EBMKernelState:
            rng_key, key_inner = jax.random.split(rng_key)
            inner = self._inner_init(position, logdensity_fn, key_inner)
            step_size = self._initial_step_size()
            adapt_state = None
            if self._adapts:
                da_init, _, _ = dual_averaging_adaptation(self._target)
                adapt_state = da_init(step_size)
            dtype = jnp.result_type(float)
            return EBMKernelState(
                i=jnp.asarray(0),
                z=inner.position,
                potential_energy=self._potential(inner, logdensity_fn),
                accept_prob=jnp.zeros((), dtype),
                mean_accept_prob=jnp.zeros((), dtype),
                diverging=jnp.asarray(False),
                step_size=step_size,
                num_warmup=jnp.asarray(num_warmup),
                adapt_state=adapt_state,
                inner=inner,
                rng_key=rng_key,
            )

        return init_one

    def sample(self, state: EBMKernelState, model_args: tuple,
               model_kwargs: dict | None) -> EBMKernelState:
        """One transition (of every chain, for a vectorized state).

        During the first ``state.num_warmup`` iterations the step size is adapted (when
        the kernel supports it); afterwards it stays at the dual-averaging average.
        """
        model_kwargs = {} if model_kwargs is None else model_kwargs
        if jnp.ndim(state.i) > 0:
            return jax.vmap(self._sample_one, in_axes=(0, None, None))(
                state, model_args, model_kwargs
            )
        return self._sample_one(state, model_args, model_kwargs)

    def _sample_one(self, state: EBMKernelState, model_args: tuple,
                    model_kwargs: dict) -> EBMKernelState:
        logdensity_fn = self._logdensity_fn(model_args, model_kwargs)
        rng_key, key_step = jax.random.split(state.rng_key)
        inner, info = self._inner_step(key_step, state.inner, logdensity_fn, state.step_size)
        accept_prob = jnp.asarray(info.acceptance_rate, state.accept_prob.dtype)
        diverging = jnp.asarray(info.is_divergent, bool)
        in_warmup = state.i < state.num_warmup
        step_size, adapt_state = state.step_size, state.adapt_state
        if self._adapts:
            _, da_update, da_final = dual_averaging_adaptation(self._target)
            updated = da_update(adapt_state, accept_prob)
            adapt_state = jax.tree.map(
                lambda new, old: jnp.where(in_warmup, new, old), updated, adapt_state
            )
            step_size = jnp.where(
                state.i + 1 < state.num_warmup,
                jnp.exp(adapt_state.log_step_size),
                jnp.where(in_warmup, da_final(adapt_state), state.step_size),
            ).astype(state.step_size.dtype)
        n = jnp.where(in_warmup, state.i + 1, state.i - state.num_warmup + 1)
        mean_accept_prob = state.mean_accept_prob + (accept_prob - state.mean_accept_prob) / n
        return EBMKernelState(
            i=state.i + 1,
            z=inner.position,
            potential_energy=self._potential(inner, logdensity_fn),
            accept_prob=accept_prob,
            mean_accept_prob=mean_accept_prob,
            diverging=diverging,
            step_size=step_size,
            num_warmup=state.num_warmup,
            adapt_state=adapt_state,
            inner=inner,
            rng_key=rng_key,
        )

    def __repr__(self) -> str:
        source = "model" if self._model is not None else "potential_fn"
        return f"{type(self).__name__}({self._kernel!r}, {source})"


class ULA(EBMKernel):
    r"""Unadjusted Langevin algorithm (:func:`ebm_ppl.kernels.ula`) for NumPyro's MCMC.

    .. math::

        z_{k+1} = z_k - h\,\nabla U(z_k) + \sqrt{2 h T}\,\xi_k,
        \qquad \xi_k \sim \mathcal N(0, I),

    with :math:`U` NumPyro's potential energy. No accept/reject step: the stationary
    law is :math:`\propto e^{-U/T}` only as :math:`h \to 0`; on a Gaussian target of
    variance :math:`\sigma^2` the chain's variance is
    :math:`T\sigma^2 \cdot 2/(2 - h/\sigma^2)` (bias :math:`O(h)`), and the chain is
    unstable for :math:`h \geq 2\sigma^2_{\min}`. The step size is used as given (no
    warm-up adaptation: there is no acceptance rate to target).

    Parameters
    ----------
    model, potential_fn
        Exactly one: a NumPyro model or ``potential_fn(z) -> -log p(z)``.
    step_size
        :math:`h > 0`, in the units of the unconstrained space.
    temperature
        :math:`T > 0`.
    init_strategy
        NumPyro init strategy for a model.

    Raises
    ------
    ValueError
        If ``step_size`` or ``temperature`` is not a positive number, or the model /
        potential_fn arguments are wrong.

    Examples
    --------
    >>> import jax, numpyro, numpyro.distributions as dist
    >>> from numpyro.infer import MCMC
    >>> def model():
    ...     numpyro.sample("x", dist.Normal(0.0, 1.0))
    >>> mcmc = MCMC(ULA(model, step_size=0.01), num_warmup=10, num_samples=10,
    ...             progress_bar=False)
    >>> mcmc.run(jax.random.key(0))
    """

    def __init__(
        self,
        model: Callable | None = None,
        potential_fn: Callable | None = None,
        step_size: float = 0.01,
        temperature: float = 1.0,
        *,
        init_strategy: Callable = init_to_uniform,
    ) -> None:
        super().__init__(model, potential_fn, init_strategy=init_strategy,
                         adapt_step_size=False)
        self._kernel = _kernels.ula(step_size, temperature)


class MH(EBMKernel):
    r"""Metropolis–Hastings (:func:`ebm_ppl.kernels.mh`) for NumPyro's MCMC.

    .. math::

        \alpha(z \to z') = \min\Big(1, \frac{p(z')\,q(z \mid z')}{p(z)\,q(z' \mid z)}\Big)

    Parameters
    ----------
    model, potential_fn
        Exactly one: a NumPyro model or ``potential_fn(z) -> -log p(z)``.
    proposal
        An :class:`ebm_ppl.kernels.Proposal` (Hastings term from its ``log_prob_fn``
        unless symmetric), or a positive float :math:`s`: the random walk
        :math:`z' = z + s\,\xi` on every unconstrained leaf
        (:func:`ebm_ppl.kernels.random_walk`). Used as given: NumPyro's warm-up does
        not adapt it.
    init_strategy
        NumPyro init strategy for a model.

    Raises
    ------
    TypeError
        If ``proposal`` is neither a Proposal nor a number.
    ValueError
        If a scale ``proposal`` is not a positive finite number.
    """

    def __init__(
        self,
        model: Callable | None = None,
        potential_fn: Callable | None = None,
        proposal: _kernels.Proposal | float = 0.1,
        *,
        init_strategy: Callable = init_to_uniform,
    ) -> None:
        super().__init__(model, potential_fn, init_strategy=init_strategy,
                         adapt_step_size=False)
        if isinstance(proposal, _kernels.Proposal):
            self._kernel = _kernels.mh(proposal, adapt_scale=False)
        elif isinstance(proposal, (int, float)) and not isinstance(proposal, bool) or (
            hasattr(proposal, "shape") and jnp.shape(proposal) == ()
        ):
            check_positive("proposal", proposal)
            self._kernel = _kernels.random_walk(proposal)
        else:
            raise TypeError(
                "proposal must be an ebm_ppl.kernels.Proposal or a positive float "
                f"(random-walk scale), got {type(proposal).__name__}"
            )


def _algorithm_name(algorithm: Any) -> tuple[str, Any]:
    """``(name, blackjax top-level API)`` of a BlackJAX algorithm or its name."""
    if isinstance(algorithm, str):
        api = getattr(blackjax, algorithm, None)
        if algorithm.startswith("_") or not isinstance(api, blackjax.GenerateSamplingAPI):
            raise ValueError(
                "algorithm must name a BlackJAX sampling algorithm (e.g. 'nuts', 'hmc', "
                f"'mala', 'barker', 'rmh'), got {algorithm!r}"
            )
        return algorithm, api
    for name in dir(blackjax):
        if getattr(blackjax, name, None) is algorithm and not name.startswith("_"):
            return name, algorithm
    if hasattr(algorithm, "differentiable") and hasattr(algorithm, "init"):
        module = getattr(algorithm.init, "__module__", "custom").rsplit(".", 1)[-1]
        return module, algorithm
    raise TypeError(
        "algorithm must be a BlackJAX top-level sampling API (blackjax.nuts, blackjax.mala, "
        f"...) or its name, got {type(algorithm).__name__}"
    )


class _InfoNormaliser(NamedTuple):
    acceptance_rate: Array
    is_divergent: Array


def _normalise_info(info: Any, state: Any) -> _InfoNormaliser:
    rate = getattr(info, "acceptance_rate", None)
    rate = jnp.asarray(1.0 if rate is None else rate, jnp.result_type(float))
    finite = jnp.isfinite(rate) & tree_all_finite(state.position)
    divergent = jnp.asarray(getattr(info, "is_divergent", False), bool) | ~finite
    return _InfoNormaliser(jnp.where(finite, rate, 0.0), divergent)


class BlackJAXKernel(EBMKernel):
    r"""Any BlackJAX sampling algorithm as a NumPyro :class:`~numpyro.infer.mcmc.MCMCKernel`.

    ``mala``, ``hmc``, ``nuts`` and ``barker`` go through the ebm_ppl adapters
    (:mod:`ebm_ppl.kernels`: NaN proposals reported as divergent); any other BlackJAX
    top-level API (``blackjax.rmh``, ``blackjax.ghmc``...) is called as
    ``algorithm(logdensity_fn, **params)`` and its ``init``/``step`` used directly.

    Parameters
    ----------
    algorithm
        A BlackJAX top-level API (``blackjax.nuts``) or its name (``"nuts"``).
    model, potential_fn
        Exactly one: a NumPyro model or ``potential_fn(z) -> -log p(z)``.
    init_strategy
        NumPyro init strategy for a model.
    adapt_step_size
        Adapt ``step_size`` by dual averaging during ``num_warmup`` (default True).
        The mass matrix is not adapted (identity unless ``inverse_mass_matrix`` given).
    target_accept_prob
        Target of the adaptation; default 0.8 for HMC/NUTS (and other algorithms),
        0.574 for MALA and Barker.
    **params
        Hyper-parameters of the algorithm. ``step_size`` defaults to 1.0 (the start of
        the adaptation, as in NumPyro) for ``mala``, ``hmc``, ``nuts``, ``barker``;
        ``hmc`` needs ``num_integration_steps``.

    Notes
    -----
    Dual averaging on :math:`x = \log h` (Hoffman & Gelman 2014, eq. 6):

    .. math::

        x_{t+1} = \mu - \frac{\sqrt t}{\gamma (t + t_0)} \sum_{s \le t} (\delta - \alpha_s),
        \qquad \bar x_{t+1} = t^{-\kappa} x_{t+1} + (1 - t^{-\kappa}) \bar x_t,

    with :math:`\mu = \log(10 h_0)`, :math:`\gamma = 0.05`, :math:`t_0 = 10`,
    :math:`\kappa = 0.75` (BlackJAX defaults); sampling uses :math:`e^{\bar x}`.

    References
    ----------
    Hoffman & Gelman (2014), https://arxiv.org/abs/1111.4246

    Examples
    --------
    >>> import jax, numpyro, numpyro.distributions as dist
    >>> from numpyro.infer import MCMC
    >>> def model():
    ...     numpyro.sample("x", dist.Normal(0.0, 1.0))
    >>> mcmc = MCMC(BlackJAXKernel("nuts", model), num_warmup=50, num_samples=50,
    ...             progress_bar=False)
    >>> mcmc.run(jax.random.key(0))
    """

    def __init__(
        self,
        algorithm: Any,
        model: Callable | None = None,
        potential_fn: Callable | None = None,
        *,
        init_strategy: Callable = init_to_uniform,
        adapt_step_size: bool = True,
        target_accept_prob: float | None = None,
        **params: Any,
    ) -> None:
        name, api = _algorithm_name(algorithm)
        super().__init__(model, potential_fn, init_strategy=init_strategy,
                         adapt_step_size=adapt_step_size,
                         target_accept_prob=target_accept_prob)
        self._name = name
        self._api = api
        self._adaptable = True
        if name in _ADAPTED:
            params = {"step_size": 1.0, **params}
            try:
                self._kernel = _ADAPTED[name](**params)
            except TypeError as err:
                raise TypeError(f"bad parameters for BlackJAX {name!r}: {err}") from err
            return
        if "step_size" in params:
            check_positive("step_size", params["step_size"])
        self._params = params
        numeric = {"step_size": jnp.asarray(params["step_size"], jnp.result_type(float))} \
            if "step_size" in params else {}
        # A descriptive Kernel (not stepped directly): name, parameters, target.
        self._kernel = Kernel(
            name=name, init_fn=api.init, kernel_fn=api.build_kernel,
            parameters=numeric, target_acceptance_rate=0.8,
        )

    def _generic(self, logdensity_fn: LogDensityFn, step_size: Array | None = None) -> Any:
        params = dict(self._params)
        if step_size is not None and "step_size" in params:
            params["step_size"] = step_size
        return self._api(logdensity_fn, **params)

    def _inner_init(self, position: ArrayTree, logdensity_fn: LogDensityFn,
                    rng_key: PRNGKey) -> Any:
        if self._name in _ADAPTED:
            return super()._inner_init(position, logdensity_fn, rng_key)
        return self._generic(logdensity_fn).init(position, rng_key)

    def _inner_step(self, rng_key: PRNGKey, inner: Any, logdensity_fn: LogDensityFn,
                    step_size: Array) -> tuple[Any, Any]:
        if self._name in _ADAPTED:
            return super()._inner_step(rng_key, inner, logdensity_fn, step_size)
        new, info = self._generic(logdensity_fn, step_size).step(rng_key, inner)
        return new, _normalise_info(info, new)
