"""filterlib.selfcheck: the students' self-checks pass right answers, fail wrong ones clearly, and are deterministic."""
from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch

import filterlib as fl
from filterlib import _selfcheck_cases, initialization, kernel, model, selfcheck, theory, train

ROOT = Path(__file__).resolve().parent.parent
F64 = torch.float64


# --------------------------------------------------------------------------------------------------------------
# Right answers, written from the definitions (as a student would)


def forward(w, Z):
    return torch.relu(Z @ w).mean(dim=-1)


def loss(w, w_star, Z):
    return 0.5 * ((forward(w, Z) - forward(w_star, Z)) ** 2).mean()


def population_gradient(w, w_star, Z):
    X = Z[:, 0, :]
    a, b = (X @ w >= 0).to(X.dtype), (X @ w_star >= 0).to(X.dtype)
    A_pos = (X * (a * b)[:, None]).T @ X / X.shape[0]
    A_neg = (X * (a * (1 - b))[:, None]).T @ X / X.shape[0]
    return (A_pos + A_neg) @ w - A_pos @ w_star


def z_v(Z, v):
    return (Z * (Z @ v >= 0).unsqueeze(-1).to(Z.dtype)).mean(dim=1)


def conv_gradient(w, w_star, Z):
    Zw, Zs = z_v(Z, w), z_v(Z, w_star)
    n = Z.shape[0]
    return Zw.T @ Zw @ w / n - Zw.T @ Zs @ w_star / n


def gd_step(w, w_star, Z, eta):
    residual = forward(w, Z) - forward(w_star, Z)
    return w - eta * (residual[:, None] * z_v(Z, w)).mean(dim=0)


def gamma(Z, w_star, W):
    lows = []
    for w in W:
        X = Z[:, 0, :]
        m = ((X @ w >= 0) & (X @ w_star >= 0)).to(X.dtype)
        lows.append(torch.linalg.eigvalsh((X * m[:, None]).T @ X / X.shape[0])[0])
    return min(float(x) for x in lows)


def rho(Z):
    avg = Z.mean(dim=1, keepdim=True)
    cos = (Z * avg).sum(-1) / (Z.norm(dim=-1) * avg.norm(dim=-1))
    return torch.arccos(cos.clamp(-1, 1)).max()


def sgd_step(w, w_star, Z, eta, batch_size, generator):
    idx = torch.randint(Z.shape[0], (batch_size,), generator=generator)
    return gd_step(w, w_star, Z[idx], eta)


def ball(m, p, radius, generator):
    x = torch.randn(m, p, generator=generator, dtype=F64)
    return radius * torch.rand(m, 1, generator=generator, dtype=F64) ** (1 / p) * x / x.norm(dim=1, keepdim=True)


RIGHT = {
    "check_forward": forward,
    "check_loss": loss,
    "check_population_gradient": population_gradient,
    "check_conv_gradient": conv_gradient,
    "check_gd_step": gd_step,
    "check_gamma": gamma,
    "check_rho": rho,
    "check_sgd_step": sgd_step,
    "check_ball_sampler": ball,
}


def test_every_check_has_a_right_answer_here():
    assert set(RIGHT) == {name for name in selfcheck.__all__ if name.startswith("check_")}
    assert set(RIGHT) == set(_selfcheck_cases.CHECK_NAMES)


@pytest.mark.parametrize("name", sorted(RIGHT))
def test_right_answers_pass_with_one_line_on_stdout(name, capsys):
    getattr(selfcheck, name)(RIGHT[name])
    out, err = capsys.readouterr()
    assert err == ""
    assert re.fullmatch(rf"✓ {name}: passed \d+ cases\n  \(.+\)\n", out), out
    assert all(len(line) <= 88 for line in out.splitlines()), out
    getattr(selfcheck, name)(RIGHT[name])
    assert capsys.readouterr().out == out                                    # deterministic


@pytest.mark.parametrize("name", sorted(RIGHT))
def test_the_checks_accept_filterlibs_own_functions(name, monkeypatch, capsys):
    """With the ban on calling the reference lifted, the reference itself passes (the plumbing is right)."""
    monkeypatch.setattr(selfcheck, "_refused", lambda name: ())
    own = {
        "check_forward": model.forward,
        "check_loss": model.loss,
        "check_population_gradient": model.gradient,
        "check_conv_gradient": model.gradient,
        "check_gd_step": lambda w, ws, Z, eta: w - eta * model.gradient(w, ws, Z),
        "check_gamma": lambda Z, ws, W: torch.linalg.eigvalsh(theory.A_matrices(W, ws, Z)[0])[:, 0].min(),
        "check_rho": theory.rho,
        "check_sgd_step": lambda w, ws, Z, eta, b, g: train.sgd(w, ws, Z, eta, 1, batch_size=b, generator=g,
                                                                monitor_size=Z.shape[0]).w,
        "check_ball_sampler": lambda m, p, r, g: initialization.ball(m, p, r, generator=g, dtype=F64),
    }[name]
    getattr(selfcheck, name)(own)
    assert capsys.readouterr().out.startswith(f"✓ {name}: passed")


# --------------------------------------------------------------------------------------------------------------
# Wrong answers


def flip(fn):
    return lambda *a: -fn(*a)


WRONG = [
    ("check_forward", lambda w, Z: torch.relu(Z @ w).sum(dim=-1), "expected"),                  # sum, not mean
    ("check_forward", lambda w, Z: torch.relu((Z @ w).mean(dim=-1)), "expected"),               # pool, then ReLU
    ("check_loss", lambda w, ws, Z: 2 * loss(w, ws, Z), "expected"),                           # without the ½
    ("check_population_gradient", flip(population_gradient), "expected"),                       # sign
    ("check_population_gradient", lambda w, ws, Z: 2 * population_gradient(w, ws, Z), "expected"),   # factor 2
    ("check_conv_gradient", lambda w, ws, Z: conv_gradient(w, ws, Z) * Z.shape[1], "expected"),  # no 1/k
    ("check_gd_step", lambda w, ws, Z, eta: gd_step(w, ws, Z, 2 * eta), "expected"),
    ("check_gd_step", lambda w, ws, Z, eta: 2 * w - gd_step(w, ws, Z, eta), "expected"),        # ascent
    ("check_gamma", lambda Z, ws, W: torch.linalg.eigvalsh(theory.A_matrices(W, ws, Z)[0])[:, -1].max(), "expected"),
    ("check_rho", lambda Z: rho(Z) / 2, "expected"),
    ("check_rho", lambda Z: torch.arccos((Z * Z.mean(1, keepdim=True)).sum(-1)
                                         / (Z.norm(dim=-1) * Z.mean(1, keepdim=True).norm(dim=-1))).max(), "NaN"),
    ("check_sgd_step", lambda w, ws, Z, eta, b, g: gd_step(w, ws, Z[torch.randint(Z.shape[0], (b,))], eta),
     "global RNG"),
    ("check_sgd_step", lambda w, ws, Z, eta, b, g: gd_step(w, ws, Z[torch.randperm(Z.shape[0], generator=g)[:b]], eta),
     "expected"),                                                                             # without replacement
    ("check_sgd_step", lambda w, ws, Z, eta, b, g: gd_step(w, ws, Z, eta), "expected"),         # full batch
    ("check_ball_sampler", lambda m, p, r, g: r * torch.rand(m, 1, generator=g, dtype=F64)
     * torch.nn.functional.normalize(torch.randn(m, p, generator=g, dtype=F64), dim=1), "radii"),
    ("check_ball_sampler", lambda m, p, r, g: r * torch.rand(m, 1, generator=g, dtype=F64) ** (1 / p)
     * torch.nn.functional.normalize(2 * torch.rand(m, p, generator=g, dtype=F64) - 1, dim=1), "directions"),
    ("check_ball_sampler", lambda m, p, r, g: r * (2 * torch.rand(m, p, generator=g, dtype=F64) - 1), "has norm"),
    ("check_ball_sampler", lambda m, p, r, g: ball(m, p, r, None), "global RNG"),
]


@pytest.mark.parametrize("name, fn, says", WRONG, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(WRONG)])
def test_wrong_answers_fail_on_the_first_bad_case_with_its_inputs(name, fn, says, capsys):
    # The "global RNG" answers draw from torch's global generator, whose state depends on every test run before:
    # two draws of one index out of 100 coincide with probability 1/100, and the check then reports the wrong
    # step instead. Seeding it makes the answer's draws, and so this test, deterministic.
    torch.manual_seed(0)
    with pytest.raises(selfcheck.CheckFailed) as info:
        getattr(selfcheck, name)(fn)
    message = str(info.value)
    assert message.startswith(f"✗ {name}: case ") and "inputs:" in message
    assert f"selfcheck.inputs('{name}', " in message
    if says == "global RNG":
        assert "generator" in message and "global" in message
    else:
        assert says in message, message
    with pytest.raises(selfcheck.CheckFailed) as again:
        getattr(selfcheck, name)(fn)
    if says != "global RNG":
        assert str(again.value) == message                                     # deterministic
    assert "✓" not in capsys.readouterr().out


def test_the_message_names_the_first_failing_case_and_its_values():
    with pytest.raises(selfcheck.CheckFailed) as info:
        selfcheck.check_forward(lambda w, Z: torch.relu(Z @ w).sum(dim=-1))
    message = str(info.value)
    index = int(re.search(r"case (\d+) of", message).group(1))
    w, Z = selfcheck.inputs("check_forward", index)
    assert Z.shape[1] > 1                                 # the k = 1 cases pass: sum and mean agree there
    for i in range(1, index):
        assert selfcheck.inputs("check_forward", i)[1].shape[1] == 1
    assert f"Z = shape {tuple(Z.shape)}" in message
    assert "expected:" in message and "got:" in message and "largest difference" in message


def test_no_reference_code_in_any_message():
    messages = []
    for name, fn, _ in WRONG:
        try:
            getattr(selfcheck, name)(fn)
        except selfcheck.CheckFailed as exc:
            messages.append(str(exc))
            assert exc._render_traceback_()[0].startswith("CheckFailed: ✗")
    text = "\n".join(messages)
    for code in ("def ", "_ref_", "return ", "model.gradient(", "A_matrices(", "eigvalsh", "import "):
        assert code not in text


def test_not_implemented_propagates_unchanged():
    error = NotImplementedError("ex-label: a hint")

    def stub(*args):
        raise error

    for name in RIGHT:
        with pytest.raises(NotImplementedError) as info:
            getattr(selfcheck, name)(stub)
        assert info.value is error and str(info.value) == "ex-label: a hint"


def test_calling_the_function_to_be_written_is_refused_and_restored():
    original = fl.gradient
    with pytest.raises(selfcheck.CheckFailed, match="calls filterlib.model.gradient"):
        selfcheck.check_gd_step(lambda w, ws, Z, eta: w - eta * fl.gradient(w, ws, Z))
    assert fl.gradient is original and model.gradient is original and train.sgd is not None
    with pytest.raises(selfcheck.CheckFailed, match="calls filterlib.model.forward"):
        selfcheck.check_forward(lambda w, Z: fl.forward(w, Z))
    assert fl.forward is model.forward
    with pytest.raises(selfcheck.CheckFailed, match="calls filterlib.theory.A_matrices"):
        selfcheck.check_population_gradient(
            lambda w, ws, Z: sum(theory.A_matrices(w, ws, Z)) @ w - theory.A_matrices(w, ws, Z)[0] @ ws)
    with pytest.raises(selfcheck.CheckFailed, match="calls filterlib.initialization.ball"):
        selfcheck.check_ball_sampler(lambda m, p, r, g: initialization.ball(m, p, r, generator=g))


def test_other_mistakes_have_their_own_message(capsys):
    with pytest.raises(selfcheck.CheckFailed, match="returned None"):
        selfcheck.check_forward(lambda w, Z: None)
    with pytest.raises(selfcheck.CheckFailed, match=r"shape \(7,\), got shape \(7, 1\).*reshape"):
        selfcheck.check_forward(lambda w, Z: forward(w, Z)[:, None])

    def in_place(w, w_star, Z, eta):
        w -= eta * (gd_step(w.clone(), w_star, Z, 1.0) - w) * -1
        return w
    with pytest.raises(selfcheck.CheckFailed, match="changed its input `w` in place"):
        selfcheck.check_gd_step(in_place)
    with pytest.raises(selfcheck.CheckFailed, match="float32"):
        selfcheck.check_forward(lambda w, Z: 1.5 * forward(w, Z).float())
    with pytest.raises(TypeError, match="your function itself"):
        selfcheck.check_forward(forward(torch.ones(2, dtype=F64), torch.ones(3, 1, 2, dtype=F64)))
    # a bug inside the student's function: the error is theirs, and the inputs are printed first
    with pytest.raises(RuntimeError):
        selfcheck.check_forward(lambda w, Z: Z @ w[:0])
    assert "your function raised RuntimeError on case 1" in capsys.readouterr().out


def test_numpy_and_float_answers_are_accepted(capsys):
    selfcheck.check_forward(lambda w, Z: forward(w, Z).numpy())
    selfcheck.check_rho(lambda Z: float(rho(Z)))
    selfcheck.check_gamma(gamma)                                          # returns a Python float
    assert capsys.readouterr().out.count("✓") == 3


def test_inputs_rebuild_the_cases():
    a = selfcheck.inputs("check_gd_step", 2)
    b = selfcheck.inputs("check_gd_step", 2)
    assert len(a) == 4 and all(torch.equal(x, y) for x, y in zip(a[:3], b[:3])) and a[3] == b[3]
    a[0].add_(1.0)                                                       # a copy: the check's cases do not change
    assert torch.equal(selfcheck.inputs("check_gd_step", 2)[0], b[0])
    assert isinstance(selfcheck.inputs("check_rho", 1), torch.Tensor)
    with pytest.raises(ValueError, match="cases 1 to"):
        selfcheck.inputs("check_rho", 99)
    with pytest.raises(ValueError, match="no check named"):
        selfcheck.inputs("check_nothing", 1)


def test_cases_cover_edge_shapes():
    shapes = {tuple(selfcheck.inputs("check_forward", i)[1].shape) for i in range(1, 11)}
    assert any(s[1] == 1 for s in shapes) and any(s[2] == 1 for s in shapes) and any(s[1] > 1 for s in shapes)
    conv = [selfcheck.inputs("check_conv_gradient", i) for i in range(1, 11)]
    assert any(torch.equal(w, ws) for w, ws, _ in conv)                 # w = w*: the gradient is 0
    ball_ps = [selfcheck.inputs("check_ball_sampler", i)[1] for i in range(1, 6)]
    assert 1 in ball_ps and max(ball_ps) >= 10


def test_sgd_step_is_one_step_of_filterlib_sgd():
    """The exercise's minibatch rule (torch.randint with the given generator) is what fl.sgd does on the CPU."""
    w, w_star, Z, eta, b, g = selfcheck.inputs("check_sgd_step", 2)
    mine = sgd_step(w, w_star, Z, eta, b, _selfcheck_cases.clone(g))
    theirs = train.sgd(w, w_star, Z, eta, 1, batch_size=b, generator=_selfcheck_cases.clone(g), monitor_size=Z.shape[0]).w
    assert torch.allclose(mine, theirs, rtol=1e-12, atol=1e-12)


def test_gamma_over_seeded_directions_is_theory_gamma():
    """The smoothness exercise's claim: over directions_at_angle(…, generator seeded s), it is theory.gamma(seed=s)."""
    Z = torch.randn(3000, 1, 4, generator=fl.generator(5, "cpu"), dtype=F64)
    w_star = torch.tensor([1.0, 1.0, 0.0, 0.0], dtype=F64)
    W = theory.directions_at_angle(w_star, math.pi / 3, 16, generator=fl.generator(0, Z.device))
    assert gamma(Z, w_star, W) == pytest.approx(float(theory.gamma(Z, w_star, math.pi / 3, n_directions=16, seed=0)),
                                                rel=1e-10)


def test_the_instructor_page_shows_a_real_failure():
    page = (ROOT / "chapters" / "instructors.md").read_text()
    shown = re.search(r"```(?:text|\{code-block\} text\n:class: [\w-]+\n)\n?(CheckFailed: .*?)\n```", page,
                      re.S).group(1)
    with pytest.raises(selfcheck.CheckFailed) as info:
        selfcheck.check_gd_step(lambda w, ws, Z, eta: gd_step(w, ws, Z, 2 * eta))
    assert shown == "\n".join(info.value._render_traceback_())
    for name in RIGHT:
        assert f"selfcheck.{name}" in page, f"the instructor page does not list {name}"


# --------------------------------------------------------------------------------------------------------------
# Refused by identity: every spelling of the functions that compute the answer, their kernels, the references

def _f_star(ws, Z):
    return kernel.outputs(ws, Z)


def _one_step(w, ws, Z):
    """The gradient from one step of filterlib's gradient descent (η = 1)."""
    return w - train.gradient_descent(w, ws, Z, 1.0, 1).w


def _autograd(w, ws, Z):
    w = w.clone().requires_grad_(True)
    return torch.autograd.grad(model.loss(w, ws, Z), w)[0]


def _gamma_by_extreme(Z, ws, W):
    A_pos, _ = theory.A_matrices(W, ws, Z)
    return theory.extreme(A_pos[None, None], torch.ones(1, dtype=F64), kind="min")[0][0]


def _loss_from_relative_loss(w, ws, Z):
    if torch.equal(w, ws):
        return torch.zeros((), dtype=F64)
    return 10 ** model.relative_loss(w, ws, Z) * fl.forward(ws, Z).mean() ** 2 / 2


# (check, a cheat that computes the right answer with filterlib, the function the message names)
CHEATS = [
    ("check_forward", lambda w, Z: model.forward(w, Z), "filterlib.model.forward"),
    ("check_forward", lambda w, Z, f=fl.forward: f(w, Z), "filterlib.model.forward"),          # captured default
    ("check_forward", lambda w, Z: kernel.outputs(w, Z), "filterlib.kernel.outputs"),
    ("check_forward", lambda w, Z: kernel.labels(w, Z), "filterlib.kernel.labels"),
    ("check_forward", lambda w, Z: kernel.fused_pass(w[None], Z)[0][:, 0], "filterlib.kernel.fused_pass"),
    ("check_forward", lambda w, Z: kernel.residual_pass(w[None], w, Z)[1], "filterlib.kernel.residual_pass"),
    ("check_forward", lambda w, Z: selfcheck._ref_forward(w, Z), "filterlib.selfcheck._ref_forward"),
    ("check_loss", lambda w, ws, Z: fl.loss(w, ws, Z), "filterlib.model.loss"),
    ("check_loss", lambda w, ws, Z: kernel.loss_and_gradient(w, Z, _f_star(ws, Z), need_gradient=False)[0],
     "filterlib.kernel.loss_and_gradient"),
    ("check_loss", lambda w, ws, Z: torch.as_tensor(train.gradient_descent(w, ws, Z, 1.0, 0).loss[0]),
     "filterlib.train.gradient_descent"),
    ("check_loss", _loss_from_relative_loss, "filterlib.model.relative_loss"),
    ("check_loss", lambda w, ws, Z: selfcheck._ref_loss(w, ws, Z), "filterlib.selfcheck._ref_loss"),
    ("check_population_gradient", lambda w, ws, Z: fl.gradient(w, ws, Z), "filterlib.model.gradient"),
    ("check_population_gradient", lambda w, ws, Z: (sum(theory.A_matrices(w, ws, Z)) @ w
                                                    - theory.A_matrices(w, ws, Z)[0] @ ws),
     "filterlib.theory.A_matrices"),
    ("check_population_gradient", _autograd, "filterlib.model.loss"),
    ("check_population_gradient", _one_step, "filterlib.train.gradient_descent"),
    ("check_population_gradient",
     lambda w, ws, Z: kernel.loss_and_gradient(w, Z, _f_star(ws, Z))[1], "filterlib.kernel.loss_and_gradient"),
    ("check_population_gradient", lambda w, ws, Z: (lambda s: (s["pos"][0, 0] + s["neg"][0, 0]) @ w / Z.shape[0]
                                                    - s["pos"][0, 0] @ ws / Z.shape[0])(
        theory.moments._one_patch_sums(w[None], ws, Z[:, 0], ("pos", "neg"), 1)[0]),
     "filterlib.theory.moments._one_patch_sums"),
    ("check_conv_gradient", lambda w, ws, Z: theory.four_region_gradient(w, ws, Z),
     "filterlib.theory.four_region_gradient"),
    ("check_conv_gradient", lambda w, ws, Z: (lambda M: M["ZwZw"] @ w - M["ZwZs"] @ ws)(theory.conv_moments(w, ws, Z)),
     "filterlib.theory.conv_moments"),
    ("check_conv_gradient", lambda w, ws, Z: kernel.fused_pass(w[None], Z, _f_star(ws, Z))[1][0] / Z.shape[0]
     / Z.shape[1], "filterlib.kernel.fused_pass"),
    ("check_conv_gradient", lambda w, ws, Z: selfcheck._ref_gradient(w, ws, Z), "filterlib.selfcheck._ref_gradient"),
    ("check_gd_step", lambda w, ws, Z, eta: w - eta * fl.gradient(w, ws, Z), "filterlib.model.gradient"),
    ("check_gd_step", lambda w, ws, Z, eta: train.gradient_descent(w, ws, Z, eta, 1).w, "filterlib.train.gradient_descent"),
    ("check_gd_step", lambda w, ws, Z, eta: w - eta * _autograd(w, ws, Z), "filterlib.model.loss"),
    ("check_gd_step", lambda w, ws, Z, eta: w - eta * kernel.fused_pass(w[None], Z, fl.forward(ws, Z))[1][0]
     / Z.shape[0] / Z.shape[1], "filterlib.kernel.fused_pass"),
    ("check_gd_step", lambda w, ws, Z, eta: selfcheck._ref_gd_step(w, ws, Z, eta), "filterlib.selfcheck._ref_gd_step"),
    ("check_gamma", _gamma_by_extreme, "filterlib.theory.extreme"),
    ("check_gamma", lambda Z, ws, W: theory.extremes._spectral(theory.A_matrices(W, ws, Z)[0], "min").min(),
     "filterlib.theory.extremes._spectral"),
    ("check_gamma", lambda Z, ws, W: selfcheck._ref_gamma(Z, ws, W), "filterlib.selfcheck._ref_gamma"),
    ("check_rho", lambda Z: theory.rho(Z), "filterlib.theory.rho"),
    ("check_rho", lambda Z: (lambda avg: theory.estimators._angle_to(Z, (avg / avg.norm(dim=-1, keepdim=True))[:, None])
                             )(Z.mean(1))[0].max(), "filterlib.theory.estimators._angle_to"),
    ("check_rho", lambda Z: selfcheck._ref_rho(Z), "filterlib.selfcheck._ref_rho"),
    ("check_sgd_step", lambda w, ws, Z, eta, b, g: train.sgd(w, ws, Z, eta, 1, batch_size=b, generator=g,
                                                             monitor_size=Z.shape[0]).w, "filterlib.train.sgd"),
    ("check_sgd_step", lambda w, ws, Z, eta, b, g: selfcheck._ref_sgd_step(w, ws, Z, eta, b, g),
     "filterlib.selfcheck._ref_sgd_step"),
    ("check_ball_sampler", lambda m, p, r, g: initialization.ball(m, p, r, generator=g, dtype=F64),
     "filterlib.initialization.ball"),
]


def _codes():
    """The code of every function any check refuses (to show that none is left swapped)."""
    return {id(f): (f, f.__code__) for name in RIGHT for f in selfcheck._refused(name)}


@pytest.mark.parametrize("name, cheat, names", CHEATS, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(CHEATS)])
def test_every_function_computing_the_answer_is_refused(name, cheat, names, monkeypatch, capsys):
    before = _codes()
    with pytest.raises(selfcheck.CheckFailed) as info:
        getattr(selfcheck, name)(cheat)
    assert str(info.value) == (f"✗ {name}: your function calls {names} (directly or through another filterlib "
                               f"function), which computes what this exercise asks you to write. Write it yourself "
                               f"from its definition.")
    assert all(f.__code__ is code for f, code in before.values())                # nothing left swapped
    monkeypatch.setattr(selfcheck, "_refused", lambda name: ())                 # the cheat does give the answer
    getattr(selfcheck, name)(cheat)
    assert capsys.readouterr().out.startswith(f"✓ {name}: passed")


def test_every_import_spelling_is_refused():
    from filterlib.model import forward as imported
    import filterlib.model as m
    spellings = [lambda w, Z: imported(w, Z), lambda w, Z: m.forward(w, Z), lambda w, Z: fl.forward(w, Z),
                 lambda w, Z: getattr(fl, "for" + "ward")(w, Z), lambda w, Z: fl.loss(w, 0 * w, Z) * 0 + m.forward(w, Z)]
    for spelling in spellings:
        with pytest.raises(selfcheck.CheckFailed, match=r"calls filterlib\.model\.(forward|loss)|calls filterlib.kernel"):
            selfcheck.check_forward(spelling)


def test_a_caught_refusal_still_fails():
    def sly(w, ws, Z, eta):
        try:
            return w - eta * fl.gradient(w, ws, Z)
        except Exception:
            return gd_step(w, ws, Z, eta)
    with pytest.raises(selfcheck.CheckFailed, match="calls filterlib.model.gradient"):
        selfcheck.check_gd_step(sly)

    def sly_raise(w, ws, Z, eta):
        try:
            fl.gradient(w, ws, Z)
        except AssertionError:
            raise ValueError("something else") from None
    with pytest.raises(selfcheck.CheckFailed, match="calls filterlib.model.gradient"):
        selfcheck.check_gd_step(sly_raise)


def test_the_allowed_functions_stay_allowed(capsys):
    """Each exercise's allowed filterlib functions (as in the chapters' solutions) work inside the check."""
    def gd(w, ws, Z, eta):
        residual = fl.forward(w, Z) - fl.forward(ws, Z)
        return w - eta * (residual[:, None] * z_v(Z, w)).mean(dim=0)

    def sgd(w, ws, Z, eta, b, g):
        return w - eta * fl.gradient(w, ws, Z[torch.randint(Z.shape[0], (b,), generator=g)])

    def gam(Z, ws, W):
        theory.directions_at_angle(ws, 0.3, 2, seed=0)
        return torch.linalg.eigvalsh(theory.A_matrices(W, ws, Z)[0])[:, 0].min()

    def ball_(m, p, r, g):
        return r * torch.rand(m, 1, generator=g, dtype=F64) ** (1 / p) * initialization.directions(m, p, g, F64)

    def loss_(w, ws, Z):
        return 0.5 * ((fl.forward(w, Z) - fl.forward(ws, Z)) ** 2).mean()

    for name, fn in [("check_gd_step", gd), ("check_sgd_step", sgd), ("check_gamma", gam), ("check_loss", loss_)]:
        for seed in (None, 7):
            getattr(selfcheck, name)(fn, seed=seed)
    selfcheck.check_ball_sampler(ball_)
    assert capsys.readouterr().out.count("✓") == 9


def test_guards_nest_and_restore_even_when_the_answer_raises(capsys):
    from filterlib import _selfcheck_guard as guard
    before = _codes()
    w, ws, Z, eta = selfcheck.inputs("check_gd_step", 1)
    with guard.refusing("outer", [model.gradient]) as outer:
        with pytest.raises(ZeroDivisionError):
            with guard.refusing("inner", [model.forward, model.gradient]):
                with pytest.raises(selfcheck.CheckFailed, match="inner: your function calls filterlib.model.forward"):
                    fl.forward(w, Z)
                1 / 0                                                    # the inner answer raises
        assert fl.forward(w, Z).shape == (Z.shape[0],)                  # the inner guard's refusals are undone …
        with pytest.raises(selfcheck.CheckFailed, match="outer: your function calls filterlib.model.gradient"):
            fl.gradient(w, ws, Z)                                        # … the outer one's are still in force
    assert len(outer) == 1

    def oracle(w, ws, Z, eta):                  # a check inside an answer cannot serve as an oracle
        selfcheck.check_gd_step(lambda *a: a[0])
    with pytest.raises(selfcheck.CheckFailed, match="your function calls filterlib.selfcheck._ref_gd_step"):
        selfcheck.check_gd_step(oracle)

    def inner_fails(w, Z):
        selfcheck.check_gd_step(lambda *a: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        selfcheck.check_forward(inner_fails)
    assert all(f.__code__ is code for f, code in before.values())
    # the library computes normally afterwards
    w, ws, Z, eta = selfcheck.inputs("check_gd_step", 1)
    assert torch.allclose(fl.forward(w, Z), forward(w, Z), rtol=1e-12, atol=1e-12)
    assert torch.allclose(fl.gradient(w, ws, Z), conv_gradient(w, ws, Z), rtol=1e-10, atol=1e-12)
    assert fl.loss(w, ws, Z) == pytest.approx(float(loss(w, ws, Z)), rel=1e-12)
    Zg, ws3 = selfcheck.inputs("check_gamma", 2)[:2]
    assert float(theory.gamma(Zg, ws3, 0.5, n_directions=4)) > 0 and float(theory.rho(Z)) >= 0
    assert initialization.ball(5, 3, 1.0, seed=0).shape == (5, 3)


# --------------------------------------------------------------------------------------------------------------
# No expected value exists while the answer runs

def _reachable(skip):
    """Every tensor and number reachable from the frames above the caller: locals, closures, the checks' module
    globals, and the containers and filterlib objects in them."""
    import sys
    import types
    seen, out = set(), []
    todo = [(frame_value, 0) for frame_value in _frame_values(sys._getframe(2))]
    todo += [(vars(mod), 0) for key, mod in list(sys.modules.items()) if key.startswith("filterlib") and "selfcheck" in key]
    while todo:
        obj, depth = todo.pop()
        if id(obj) in seen or obj is skip or depth > 4:
            continue
        seen.add(id(obj))
        if isinstance(obj, (torch.Tensor, float)):
            out.append(obj)
        elif isinstance(obj, dict):
            todo += [(x, depth + 1) for x in obj.values()]
        elif isinstance(obj, (list, tuple, set)):
            todo += [(x, depth + 1) for x in obj]
        elif isinstance(obj, types.FunctionType):
            todo += [(c.cell_contents, depth + 1) for c in (obj.__closure__ or ()) if c.cell_contents is not None]
            todo += [(x, depth + 1) for x in (obj.__defaults__ or ())]
        elif type(obj).__module__.startswith("filterlib") and hasattr(obj, "__dict__"):
            todo.append((vars(obj), depth + 1))
    return out


def _frame_values(frame):
    """The locals of every frame up to the test function (whose own bookkeeping is not the checker's)."""
    while frame is not None and frame.f_code.co_filename != __file__:
        yield frame.f_locals
        frame = frame.f_back


def _holds_values(x) -> bool:
    """A tensor with values in memory: not torch.compile's fake or meta tensors (left in memory when an earlier test
    in the same process compiled something; they hold shapes only, and comparing them raises)."""
    return (issubclass(type(x), torch.Tensor) and not type(x).__module__.startswith("torch._subclasses")
            and x.device.type != "meta")


def _same(x, answer) -> bool:
    x = torch.as_tensor(x, dtype=F64) if not isinstance(x, torch.Tensor) else x.detach()
    return x.shape == answer.shape and x.dtype == F64 and torch.allclose(x, answer, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", [n for n in sorted(RIGHT) if n != "check_ball_sampler"])
def test_an_answer_reading_the_stack_finds_no_expected_value(name, capsys):
    leaks, earlier = [], []

    def spy(*args):
        answer = torch.as_tensor(RIGHT[name](*[selfcheck_clone(a) for a in args]), dtype=F64)
        # this case's answer and every earlier case's (not the answer of a previous call on this same case, which
        # check_sgd_step keeps: that is the function's own result), unless zero or equal to an input
        repeat = any(_same(key, args[0]) for key, _ in earlier)
        wanted = [a for key, a in earlier + [(None, answer)] if (not repeat if key is None else not _same(key, args[0]))
                  and float(a.abs().max()) > 0 and not any(isinstance(x, torch.Tensor) and _same(x, a) for x in args)]
        for x in _reachable(spy):
            leaks.extend(float(a.reshape(-1)[0]) for a in wanted if _same(x, a))
        earlier.append((args[0], answer))
        return answer
    getattr(selfcheck, name)(spy, seed=3)
    assert leaks == []
    assert capsys.readouterr().out.startswith(f"✓ {name}: passed")

    def cheat(*args):                                         # returns the first tensor of the right shape it finds
        shape = torch.as_tensor(RIGHT[name](*[selfcheck_clone(a) for a in args])).shape
        for x in _reachable(cheat):
            if isinstance(x, torch.Tensor) and x.shape == shape and not any(x is a for a in args):
                return x
        return torch.zeros(shape, dtype=F64)
    with pytest.raises(selfcheck.CheckFailed, match="expected:"):
        getattr(selfcheck, name)(cheat)


def selfcheck_clone(a):
    return _selfcheck_cases.clone(a)


def test_no_tensor_in_memory_holds_the_expected_value():
    """Not even unreachable from the stack: no live tensor holds the answer (on cases no other test computes)."""
    import gc
    public = [selfcheck.inputs("check_gd_step", i)[0] for i in range(1, 8)]

    def spy(w, ws, Z, eta):
        answer = gd_step(w, ws, Z, eta)
        if not torch.allclose(answer, w) and not any(torch.equal(w, x) for x in public):
            found = [x for x in gc.get_objects() if _holds_values(x) and x is not answer and _same(x, answer)]
            assert not found, "an expected value exists while the answer runs"
            spy.looked += 1
        return answer
    spy.looked = 0
    selfcheck.check_gd_step(spy, seed=11)
    assert spy.looked >= 3


# --------------------------------------------------------------------------------------------------------------
# Own messages: NaN and ±inf, complex results, not a function, bad arguments of inputs and seed

def _as_answer(name, transform):
    def answer(*args):
        return transform(torch.as_tensor(RIGHT[name](*args), dtype=F64).clone())
    return answer


def _first_set(value):
    def set_first(t):
        t.reshape(-1)[0] = value
        return t
    return set_first


@pytest.mark.parametrize("name", sorted(RIGHT))
@pytest.mark.parametrize("value, says", [(math.nan, "your result contains NaN"),
                                         (math.inf, "your result contains an infinite value (inf)"),
                                         (-math.inf, "your result contains an infinite value (-inf)")])
def test_nan_and_inf_have_their_own_message(name, value, says):
    with pytest.raises(selfcheck.CheckFailed) as info:
        getattr(selfcheck, name)(_as_answer(name, _first_set(value)))
    message = str(info.value)
    assert message.startswith(f"✗ {name}: case 1 of ") and says in message, message
    assert "global" not in message and "largest difference" not in message


@pytest.mark.parametrize("name", sorted(RIGHT))
def test_a_complex_result_fails_even_with_the_right_real_part(name):
    garbage = lambda t: t + 1j * torch.rand(t.shape, dtype=F64, generator=torch.Generator().manual_seed(1))  # noqa
    for transform in (garbage, lambda t: garbage(t).numpy(), lambda t: t.to(torch.complex128)):
        with pytest.raises(selfcheck.CheckFailed, match=r"returned a complex result \(complex128\); the answer is real"):
            getattr(selfcheck, name)(_as_answer(name, transform))
    if name in ("check_gamma", "check_rho", "check_loss"):
        with pytest.raises(selfcheck.CheckFailed, match="complex result"):
            getattr(selfcheck, name)(_as_answer(name, lambda t: complex(float(t), 0.5)))


@pytest.mark.parametrize("name", sorted(RIGHT))
def test_every_check_wants_a_function_and_a_valid_seed(name):
    check = getattr(selfcheck, name)
    for not_a_function in (None, torch.ones(3), "forward"):
        with pytest.raises(TypeError, match=rf"{name} takes your function itself, e.g. {name}\(my_function\)"):
            check(not_a_function)
    for bad, error in ((-1, ValueError), (1.5, TypeError), (True, TypeError), ("3", TypeError)):
        with pytest.raises(error, match="seed must be a non-negative integer"):
            check(RIGHT[name], seed=bad)


def test_inputs_checks_its_arguments():
    with pytest.raises(TypeError, match="check must be the name of a check"):
        selfcheck.inputs(selfcheck.check_rho, 1)
    with pytest.raises(ValueError, match="check must name one of the checks .*no check named 'rho'"):
        selfcheck.inputs("rho", 1)
    for bad in (1.5, True, "1", None):
        with pytest.raises(TypeError, match="case must be a positive integer"):
            selfcheck.inputs("check_gd_step", bad)
    with pytest.raises(ValueError, match="case must be a positive integer, got 0"):
        selfcheck.inputs("check_gd_step", 0)
    with pytest.raises(ValueError, match="case must be at most 7: check_gd_step has cases 1 to 7, got 8"):
        selfcheck.inputs("check_gd_step", 8)
    with pytest.raises(ValueError, match="case must be at most 14: .* with seed=2, got 15"):
        selfcheck.inputs("check_gd_step", 15, seed=2)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        selfcheck.inputs("check_gd_step", 1, seed=-2)
    assert torch.equal(selfcheck.inputs("check_gd_step", 2)[0], selfcheck.inputs("check_gd_step", 2, seed=None)[0])


# --------------------------------------------------------------------------------------------------------------
# Cases drawn from a seed (the autograder's hidden cases)

def _count(name, seed=None):
    n = 0
    while True:
        try:
            selfcheck.inputs(name, n + 1, seed=seed)
        except ValueError:
            return n
        n += 1


def _equal(a, b) -> bool:
    a, b = (a if isinstance(a, tuple) else (a,)), (b if isinstance(b, tuple) else (b,))
    return all(torch.equal(x, y) if isinstance(x, torch.Tensor) else
               (x.initial_seed() == y.initial_seed() if isinstance(x, torch.Generator) else x == y) for x, y in zip(a, b))


@pytest.mark.parametrize("name", sorted(RIGHT))
def test_a_seed_adds_reproducible_cases_that_differ_per_seed(name, capsys):
    public = _count(name)
    total = _count(name, seed=5)
    assert total >= 2 * public                                              # at least as many again
    for i in range(1, public + 1):                                          # the public cases come first, unchanged
        assert _equal(selfcheck.inputs(name, i), selfcheck.inputs(name, i, seed=5))
    drawn = [selfcheck.inputs(name, i, seed=5) for i in range(public + 1, total + 1)]
    assert all(_equal(a, selfcheck.inputs(name, i, seed=5)) for i, a in enumerate(drawn, public + 1))
    assert not any(_equal(a, selfcheck.inputs(name, i, seed=6)) for i, a in enumerate(drawn, public + 1))
    getattr(selfcheck, name)(RIGHT[name], seed=5)
    out = capsys.readouterr().out
    assert re.fullmatch(rf"✓ {name}: passed {total} cases, {total - public} of them drawn from the seed\n  \(.+\)\n", out)
    assert all(len(line) <= 88 for line in out.splitlines()), out


def test_drawn_cases_include_edge_shapes():
    for name in ("check_forward", "check_conv_gradient", "check_gd_step", "check_loss"):
        shapes = [selfcheck.inputs(name, i, seed=9)[-2 if name == "check_gd_step" else -1].shape
                  for i in range(_count(name) + 1, _count(name, seed=9) + 1)]
        assert any(s[0] == 1 for s in shapes) and any(s[1] == 1 for s in shapes) and any(s[2] == 1 for s in shapes)
        assert any(s[1] > 1 for s in shapes)
    ps = [selfcheck.inputs("check_ball_sampler", i, seed=9)[1] for i in range(6, _count("check_ball_sampler", 9) + 1)]
    assert 1 in ps and 2 in ps and max(ps) > 2


@pytest.mark.parametrize("name, fn, says", WRONG, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(WRONG)])
def test_wrong_answers_fail_with_a_seed_too(name, fn, says):
    torch.manual_seed(0)
    with pytest.raises(selfcheck.CheckFailed, match=rf"✗ {name}: case \d+ of \d+"):
        getattr(selfcheck, name)(fn, seed=21)


def test_an_answer_fitted_to_the_public_cases_fails_on_the_drawn_ones():
    """A function that memorised the public cases passes them, and fails on a drawn case, whose message reruns it."""
    shapes = {tuple(selfcheck.inputs("check_forward", i)[1].shape) for i in range(1, _count("check_forward") + 1)}

    def fitted(w, Z):
        return forward(w, Z) if tuple(Z.shape) in shapes else torch.zeros(Z.shape[0], dtype=F64)
    selfcheck.check_forward(fitted)
    with pytest.raises(selfcheck.CheckFailed) as info:
        selfcheck.check_forward(fitted, seed=1234)
    message = str(info.value)
    index = int(re.search(r"case (\d+) of", message).group(1))
    assert index > _count("check_forward")
    assert message.endswith(f"Rerun it: w, Z = selfcheck.inputs('check_forward', {index}, seed=1234)")
    w, Z = selfcheck.inputs("check_forward", index, seed=1234)
    assert not torch.allclose(fitted(w, Z), forward(w, Z))                  # the rerun shows the same failure
