"""Tests of ebm_ppl.fit and ebm_ppl.training.checkpoint: loop, caching, resume, guard, failures."""

from __future__ import annotations

import json
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ebm_ppl import CheckpointError, FitDivergenceError, FitResult, fit
from ebm_ppl.kernels import ula
from ebm_ppl.objectives import (
    Objective,
    contrastive_divergence,
    score_matching,
)
from ebm_ppl.training import FitState, loop
from ebm_ppl.training.checkpoint import (
    list_checkpoints,
    restore_checkpoint,
    save_checkpoint,
)

OPTIMIZER = optax.adam(0.05)  # one object: fits share compilations


def gaussian_energy(params, x):
    """E(x) = ½ (x-μ)ᵀ diag(exp(log_prec)) (x-μ)."""
    return 0.5 * jnp.sum(jnp.exp(params["log_prec"]) * (x - params["mu"]) ** 2)


def init_params(dim=2):
    return {"mu": jnp.zeros(dim), "log_prec": jnp.zeros(dim)}


def make_data(seed=0, n=400, mean=(1.0, -1.0), scale=(0.5, 2.0)):
    rng = np.random.default_rng(seed)
    return np.asarray(mean) + np.asarray(scale) * rng.normal(size=(n, len(mean)))


SM = score_matching()
PCD = contrastive_divergence(ula(0.05), num_steps=5, buffer_size=256)


def tree_equal(a, b):
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    return len(la) == len(lb) and all(
        np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb, strict=True)
    )


# ----------------------------------------------------------------------- basics
def test_fit_history_and_inference_data():
    data = make_data()
    result = fit(gaussian_energy, init_params(), data, SM, OPTIMIZER,
                 num_steps=120, batch_size=50, progress=False)
    assert isinstance(result, FitResult)
    assert result.steps == 120
    assert set(result.history) >= {"step", "loss", "grad_norm", "skipped", "score_norm"}
    assert all(v.shape == (120,) for v in result.history.values())
    np.testing.assert_array_equal(result.history["step"], np.arange(120))
    assert not result.history["skipped"].any()
    # score matching on a Gaussian = MLE: the mean moves to the data mean
    assert result.history["loss"][-10:].mean() < result.history["loss"][:10].mean()
    idata = result.to_inference_data()
    assert "training" in idata.groups()
    assert idata.training["loss"].dims == ("step",)
    assert idata.training.sizes["step"] == 120


def test_fit_zero_steps_returns_initial_params():
    result = fit(gaussian_energy, init_params(), make_data(), SM, OPTIMIZER,
                 num_steps=0, progress=False)
    assert result.steps == 0 and result.history == {}
    assert tree_equal(result.params, init_params())


def test_second_fit_compiles_nothing():
    compiles = []

    def listener(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(event)

    data = make_data()
    fit(gaussian_energy, init_params(), data, SM, OPTIMIZER, num_steps=60,
        batch_size=50, progress=False)
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        # more steps, another seed, new data of the same shape, new initial params
        fit(gaussian_energy, {"mu": jnp.ones(2), "log_prec": jnp.zeros(2)},
            make_data(seed=1), SM, OPTIMIZER, num_steps=170, batch_size=50,
            seed=7, progress=False)
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert compiles == []


def test_second_fit_traces_nothing():
    """The energy check of ``fit`` is cached on (energy, objective, shapes): a repeated
    fit calls the energy no more in Python; new shapes are checked again."""
    calls = []

    def counted(params, x):
        calls.append(x.shape)
        return gaussian_energy(params, x)

    data = make_data()
    fit(counted, init_params(), data, SM, OPTIMIZER, num_steps=10, batch_size=50,
        progress=False)
    assert calls
    calls.clear()
    fit(counted, init_params(), data, SM, OPTIMIZER, num_steps=20, batch_size=50, seed=3,
        progress=False)
    assert calls == []
    with pytest.raises(ValueError, match=r"could not be traced .* batch of shape \(50, 3\)"):
        fit(counted, init_params(), np.zeros((60, 3)), SM, OPTIMIZER, num_steps=1,
            batch_size=50, progress=False)


def test_minibatches_are_shuffled_epochs():
    """Within an epoch every example is used exactly once."""
    seen = []

    def record_loss(params, batch, rng_key, energy_fn, state=None):
        value = jnp.mean(jax.vmap(energy_fn, (None, 0))(params, batch))
        return value, ({"first": batch[0, 0], "sum": jnp.sum(batch[:, 0])}, state)

    obj = Objective(init=lambda k, p, d=None: (), loss=record_loss)
    data = np.stack([np.arange(40.0), np.zeros(40)], axis=1)
    result = fit(gaussian_energy, init_params(), data, obj, optax.sgd(0.0),
                 num_steps=8, batch_size=10, progress=False, steps_per_chunk=3)
    sums = result.history["sum"]
    seen.append(sums)
    np.testing.assert_allclose(sums[:4].sum(), np.arange(40.0).sum())
    np.testing.assert_allclose(sums[4:].sum(), np.arange(40.0).sum())
    assert not np.array_equal(result.history["first"][:4], result.history["first"][4:])


def test_epoch_order_depends_on_key_and_step_only():
    """The host-side example order: the indices of step t do not depend on the chunk
    that asks for them, each epoch is a permutation, and the key changes the order."""
    from ebm_ppl.training.data import EpochOrder

    whole = EpochOrder(jax.random.key(3), 40, 10).indices(0, 20)
    parts = EpochOrder(jax.random.key(3), 40, 10)
    np.testing.assert_array_equal(
        np.concatenate([parts.indices(0, 7), parts.indices(7, 6), parts.indices(13, 7)]), whole)
    np.testing.assert_array_equal(EpochOrder(jax.random.key(3), 40, 10).indices(13, 7),
                                  whole[13:])
    for epoch in range(5):
        np.testing.assert_array_equal(np.sort(whole[4 * epoch:4 * epoch + 4].ravel()),
                                      np.arange(40))
    assert not np.array_equal(whole[:4], whole[4:8])
    assert not np.array_equal(EpochOrder(jax.random.key(4), 40, 10).indices(0, 20), whole)


def test_iterator_data():
    data = make_data(n=600)

    def batches():
        for i in range(0, 600, 50):
            yield data[i : i + 50]

    result = fit(gaussian_energy, init_params(), batches(), SM, OPTIMIZER,
                 num_steps=10, progress=False, steps_per_chunk=4)
    assert result.steps == 10
    with pytest.warns(UserWarning, match="exhausted after 12 steps"):
        result = fit(gaussian_energy, init_params(), batches(), SM, OPTIMIZER,
                     num_steps=20, progress=False, steps_per_chunk=4)
    assert result.steps == 12


# ----------------------------------------------------------------------- resume
@pytest.mark.slow
def test_resume_is_bitwise_equal(tmp_path):
    data = make_data()
    kwargs = dict(num_steps=230, batch_size=50, seed=3, progress=False)
    full = fit(gaussian_energy, init_params(), data, PCD, OPTIMIZER,
               checkpoint_dir=tmp_path / "full", checkpoint_every=100, **kwargs)
    # interrupted after 120 steps (checkpoints at 100 and 120) then resumed
    first = fit(gaussian_energy, init_params(), data, PCD, OPTIMIZER,
                checkpoint_dir=tmp_path / "cut", checkpoint_every=100,
                **{**kwargs, "num_steps": 120})
    assert first.steps == 120
    assert list_checkpoints(tmp_path / "cut") == [100, 120]
    resumed = fit(gaussian_energy, init_params(), data, PCD, OPTIMIZER,
                  checkpoint_dir=tmp_path / "cut", checkpoint_every=100, **kwargs)
    assert resumed.steps == 230
    assert tree_equal(full.params, resumed.params)
    assert tree_equal(full.opt_state, resumed.opt_state)
    assert tree_equal(full.objective_state, resumed.objective_state)
    assert tree_equal(full.history, resumed.history)
    assert np.array_equal(jax.random.key_data(full.rng_key),
                          jax.random.key_data(resumed.rng_key))


def test_keyboard_interrupt_returns_partial_result_then_resumes(tmp_path, monkeypatch):
    data = make_data()
    kwargs = dict(num_steps=150, batch_size=50, progress=False, steps_per_chunk=50)
    full = fit(gaussian_energy, init_params(), data, SM, OPTIMIZER, **kwargs)

    original = loop.run_chunk
    calls = []

    def interrupting(*args, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(*args, **kw)

    monkeypatch.setattr(loop, "run_chunk", interrupting)
    with pytest.warns(UserWarning, match="interrupted at step 50 of 150"):
        partial = fit(gaussian_energy, init_params(), data, SM, OPTIMIZER,
                      checkpoint_dir=tmp_path, **kwargs)
    assert partial.interrupted and partial.steps == 50
    assert partial.history["loss"].shape == (50,)
    assert list_checkpoints(tmp_path) == [50]
    monkeypatch.setattr(loop, "run_chunk", original)
    resumed = fit(gaussian_energy, init_params(), data, SM, OPTIMIZER,
                  checkpoint_dir=tmp_path, **kwargs)
    assert tree_equal(full.params, resumed.params)
    assert tree_equal(full.history, resumed.history)


# ----------------------------------------------------------------------- checkpoints
def test_checkpoint_roundtrip_keeps_last_three(tmp_path):
    tree = {"a": jnp.arange(3.0), "key": jax.random.key(5), "n": jnp.int32(4)}
    for step in (10, 20, 30, 40):
        save_checkpoint(tmp_path, step, tree, extras={"h": np.arange(step)}, metadata={"s": 1})
    assert list_checkpoints(tmp_path) == [20, 30, 40]
    ckpt = restore_checkpoint(tmp_path, tree)
    assert ckpt.step == 40 and ckpt.metadata == {"s": 1}
    assert tree_equal(jax.tree.map(lambda x: x, {"a": ckpt.tree["a"], "n": ckpt.tree["n"]}),
                      {"a": tree["a"], "n": tree["n"]})
    assert np.array_equal(jax.random.key_data(ckpt.tree["key"]), jax.random.key_data(tree["key"]))
    np.testing.assert_array_equal(ckpt.extras["h"], np.arange(40))
    manifest = json.loads((tmp_path / "ckpt-0000000040.json").read_text())
    assert manifest["leaves"][1]["kind"] == "key"  # sorted dict keys: a, key, n


def test_corrupted_checkpoint_is_reported_and_previous_used(tmp_path):
    data = make_data()
    kwargs = dict(batch_size=50, progress=False, checkpoint_dir=tmp_path, checkpoint_every=50)
    fit(gaussian_energy, init_params(), data, SM, OPTIMIZER, num_steps=100, **kwargs)
    assert list_checkpoints(tmp_path) == [50, 100]
    npz = tmp_path / "ckpt-0000000100.npz"
    npz.write_bytes(npz.read_bytes()[:100])  # truncated write
    template = {"x": jnp.zeros(2)}
    with pytest.raises(CheckpointError, match=r"ckpt-0000000100.json .* corrupted or partial"):
        restore_checkpoint(tmp_path, template)
    with pytest.warns(UserWarning, match="resuming from step 50"):
        result = fit(gaussian_energy, init_params(), data, SM, OPTIMIZER, num_steps=100,
                     **kwargs)
    assert result.steps == 100
    # an orphan npz (killed before its manifest was written) is ignored
    (tmp_path / "ckpt-0000000999.npz").write_bytes(b"partial")
    assert list_checkpoints(tmp_path)[-1] == 100


def test_resume_with_another_objective_is_refused(tmp_path):
    from ebm_ppl.objectives import sliced_score_matching

    kwargs = dict(num_steps=10, batch_size=50, progress=False, checkpoint_dir=tmp_path,
                  steps_per_chunk=10)
    fit(gaussian_energy, init_params(), make_data(), SM, OPTIMIZER, **kwargs)
    with pytest.raises(CheckpointError, match="trained with the objective 'score_matching', "
                                              "got 'sliced_score_matching'"):
        fit(gaussian_energy, init_params(), make_data(), sliced_score_matching(), OPTIMIZER,
            **kwargs)


def test_checkpoint_mismatch_is_clear(tmp_path):
    save_checkpoint(tmp_path, 1, {"a": jnp.zeros(3)})
    with pytest.raises(CheckpointError, match=r"has shape \(3,\) but the current run expects"):
        restore_checkpoint(tmp_path, {"a": jnp.zeros(4)})
    with pytest.raises(CheckpointError, match="has 1 leaves but the current run expects 2"):
        restore_checkpoint(tmp_path, {"a": jnp.zeros(3), "b": jnp.zeros(3)})
    with pytest.raises(CheckpointError, match="no checkpoint found"):
        restore_checkpoint(tmp_path / "empty", {"a": jnp.zeros(3)})


# ----------------------------------------------------------------------- divergence guard
def nan_after_threshold_energy(params, x):
    """Finite while mu[0] < 1; NaN once training pushes mu[0] past 1 (data mean 3)."""
    scale = jnp.where(params["mu"][0] > 1.0, jnp.nan, jnp.exp(params["log_prec"][0]))
    return 0.5 * scale * jnp.sum((x - params["mu"]) ** 2)


def test_divergence_guard_stops_with_clear_error(tmp_path):
    data = make_data(n=400, mean=(3.0, 0.0), scale=(1.0, 1.0))
    with pytest.raises(FitDivergenceError, match=r"not finite for 5 consecutive steps, from step \d+") as err:
        fit(nan_after_threshold_energy, init_params(), data, SM, OPTIMIZER,
            num_steps=2000, batch_size=50, max_bad_steps=5, progress=False, steps_per_chunk=10,
            checkpoint_dir=tmp_path, checkpoint_every=10)
    assert isinstance(err.value, FloatingPointError)
    first_bad = err.value.step
    result = err.value.result
    history = result.history
    assert history["skipped"][first_bad:].all() and not history["skipped"][:first_bad].any()
    assert np.isnan(history["loss"][first_bad])
    assert result.steps == first_bad + 5
    assert all(np.isfinite(np.asarray(leaf)).all() for leaf in jax.tree.leaves(result.params))
    # the last good checkpoint survives and is readable
    steps = list_checkpoints(tmp_path)
    assert steps and steps[-1] <= first_bad
    template = {"state": FitState(
        params=init_params(), opt_state=OPTIMIZER.init(init_params()),
        objective_state=SM.init(None, None), step=jnp.int32(0), bad_count=jnp.int32(0),
        first_bad_step=jnp.int32(0), best_val_loss=jnp.float32(0),
        evals_since_best=jnp.int32(0)),
        "rng_key": jax.random.key(0)}
    ckpt = restore_checkpoint(tmp_path, template)
    assert int(ckpt.tree["state"].bad_count) == 0


def test_transient_nans_are_skipped():
    def flaky_loss(params, batch, rng_key, energy_fn, state=None):
        value, aux = SM.loss(params, batch, rng_key, energy_fn, state)
        bad = jax.random.uniform(jax.random.fold_in(rng_key, 1)) < 0.2
        return jnp.where(bad, jnp.nan, value), aux

    flaky = Objective(init=SM.init, loss=flaky_loss, name="flaky")
    data = make_data()
    result = fit(gaussian_energy, init_params(), data, flaky, OPTIMIZER,
                 num_steps=400, batch_size=50, max_bad_steps=10, progress=False)
    skipped = result.history["skipped"]
    # binomial(400, 0.2): 80 ± 8; 5 sd band
    assert 40 < skipped.sum() < 120
    assert np.isnan(result.history["loss"][skipped]).all()
    np.testing.assert_allclose(result.params["mu"], data.mean(0), atol=0.1)


# ----------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(data=np.array([[0.0, np.nan]] * 10)), "data must be finite, got 10 NaN"),
        (dict(data=np.float64(1.0)), "data must have a leading example axis"),
        (dict(data=np.zeros((0, 2))), "data must hold at least one example"),
        (dict(batch_size=0), "batch_size must be an integer >= 1, got 0"),
        (dict(num_steps=-1), "num_steps must be an integer >= 0, got -1"),
        (dict(energy_fn=lambda p, x: (x - p["mu"]) ** 2), "energy_fn must return a scalar energy"),
        (dict(data=np.zeros((10, 3))), "energy_fn could not be traced by the objective"),
        (dict(max_bad_steps=0), "max_bad_steps must be an integer >= 1"),
    ],
)
def test_fit_rejects_bad_inputs(kwargs, match):
    args = dict(energy_fn=gaussian_energy, params=init_params(), data=make_data(n=10),
                objective=SM, optimizer=OPTIMIZER)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        fit(args.pop("energy_fn"), args.pop("params"), args.pop("data"), args.pop("objective"),
            args.pop("optimizer"), num_steps=args.pop("num_steps", 5),
            batch_size=args.pop("batch_size", 5), progress=False, **args)


def test_batch_size_larger_than_data_warns():
    with pytest.warns(UserWarning, match="batch_size=64 is larger than the data set"):
        result = fit(gaussian_energy, init_params(), make_data(n=20), SM, OPTIMIZER,
                     num_steps=0, batch_size=64, progress=False)
    assert result.steps == 0


def test_progress_bar_runs(capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit(gaussian_energy, init_params(), make_data(), SM, OPTIMIZER, num_steps=60,
            batch_size=50, progress=True)
    assert "fit[score_matching]" in capsys.readouterr().err


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(objective="sm"), "objective must be an ebm_ppl.objectives.Objective, got str"),
        (dict(optimizer=3), "optimizer must be an optax GradientTransformation, got int"),
        (dict(energy_fn="E"), "energy_fn must be callable, got str"),
        (dict(seed=1.5), "seed must be an integer or a jax.random key, got 1.5"),
    ],
)
def test_fit_rejects_wrong_types(kwargs, match):
    args = dict(energy_fn=gaussian_energy, params=init_params(), data=make_data(n=10),
                objective=SM, optimizer=OPTIMIZER)
    args.update(kwargs)
    with pytest.raises(TypeError, match=match):
        fit(args.pop("energy_fn"), args.pop("params"), args.pop("data"), args.pop("objective"),
            args.pop("optimizer"), num_steps=5, batch_size=5, progress=False, **args)


def test_seed_may_be_a_key():
    data = make_data()
    kwargs = dict(num_steps=20, batch_size=50, progress=False)
    by_int = fit(gaussian_energy, init_params(), data, SM, OPTIMIZER, seed=4, **kwargs)
    by_key = fit(gaussian_energy, init_params(), data, SM, OPTIMIZER,
                 seed=jax.random.key(4), **kwargs)
    assert tree_equal(by_int.params, by_key.params)
    other = fit(gaussian_energy, init_params(), data, SM, OPTIMIZER, seed=5, **kwargs)
    assert not tree_equal(by_int.params, other.params)


def test_fit_module_is_not_shadowed():
    import importlib

    import ebm_ppl

    assert callable(ebm_ppl.fit)
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("ebm_ppl.fit")
    assert importlib.import_module("ebm_ppl.training.fitting").fit is ebm_ppl.fit


def test_print_fit_result_is_a_short_summary():
    params = {"w": jnp.zeros((300, 300)), "mu": jnp.zeros(2), "log_prec": jnp.zeros(2)}
    history = {"loss": np.linspace(1.0, 0.0, 20), "skipped": np.zeros(20, bool)}
    result = FitResult(params=params, trained_params=params, opt_state=None,
                       objective_state=None, history=history, steps=20,
                       rng_key=jax.random.key(0), objective_name="score_matching")
    text = str(result)
    assert text == repr(result)
    assert "score_matching" in text and "20 steps" in text
    assert "final loss: 0.236842" in text  # mean of the last 10 losses
    assert "float32[300, 300]" in text and "90,004 values" in text
    assert len(text) < 600 and text.count("\n") < 8
