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
    assert re.fullmatch(rf"✓ {name}: passed \d+ cases \(.+\)\n", out), out
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
    shown = re.search(r"```text\n(CheckFailed: .*?)\n```", page, re.S).group(1)
    with pytest.raises(selfcheck.CheckFailed) as info:
        selfcheck.check_gd_step(lambda w, ws, Z, eta: gd_step(w, ws, Z, 2 * eta))
    assert shown == "\n".join(info.value._render_traceback_())
    for name in RIGHT:
        assert f"selfcheck.{name}" in page, f"the instructor page does not list {name}"
