"""The cases of the students' self-checks (:mod:`filterlib.selfcheck`, chapters/instructors.md): the public
cases, rebuilt from fixed seeds on every call, and, for a given ``seed``, more cases drawn from it (other sizes,
edge cases included), appended after the public ones.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import torch

from . import _validate as v
from . import theory

F64 = torch.float64

CHECK_NAMES = ("check_ball_sampler", "check_conv_gradient", "check_forward", "check_gamma", "check_gd_step",
               "check_loss", "check_population_gradient", "check_rho", "check_sgd_step")


@dataclass
class Case:
    label: str
    args: dict                                        # the arguments of the student's function, by name
    extra: dict = field(default_factory=dict)         # anything the comparison needs


def clone(value):
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, torch.Generator):
        g = torch.Generator()
        g.manual_seed(value.initial_seed())
        return g
    return value


def gen(seed: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def randn(g, *shape):
    return torch.randn(*shape, generator=g, dtype=F64, device=g.device)


def check_name(check) -> str:
    """``check`` as the name of a check, or TypeError / ValueError naming ``check``."""
    if not isinstance(check, str):
        raise TypeError(f"check must be the name of a check as a string, e.g. 'check_gd_step', got {check!r}")
    if check not in CHECK_NAMES:
        raise ValueError(f"check must name one of the checks ({', '.join(CHECK_NAMES)}); no check named {check!r}")
    return check


def cases(name: str, seed: int | None = None) -> list[Case]:
    """The public cases of the check ``name``, then, for an int ``seed``, the cases drawn from it."""
    name = check_name(name)
    out = _public(name)
    if seed is not None:
        drawn = _drawn(name, v.nonneg_int(seed, "seed"), len(out))
        for case in drawn:
            case.extra["drawn"] = True
        out += drawn
    return out


# --------------------------------------------------------------------------------------------------------------
# Public cases (fixed seeds: never change them, students' outputs and the instructor page show them)


def _filter_cases(seed: int, shapes):
    """(label, w, w_star, Z) for each (n, k, p): random w, and w = w*, w = −w* on some shapes."""
    out = []
    for j, (n, k, p) in enumerate(shapes):
        g = gen(seed + j)
        Z = randn(g, n, k, p)
        w_star = randn(g, p)
        w = randn(g, p)
        out.append((f"n={n}, k={k}, p={p}, random w", w, w_star, Z))
        if j % 2 == 0:
            out.append((f"n={n}, k={k}, p={p}, w = w*", w_star.clone(), w_star, Z))
        if j % 3 == 1:
            out.append((f"n={n}, k={k}, p={p}, w = −0.5 w*", -0.5 * w_star, w_star, Z))
    return out


def _filter_check(name: str, rows) -> list[Case]:
    """The cases of the checks on filters from rows (label, w, w_star, Z), with a step η for check_gd_step."""
    etas = [1.0, 0.5, 0.1, 2.0, 0.05, 0.3, 1.5, 0.7]
    if name == "check_forward":
        return [Case(label, {"w": w, "Z": Z}) for label, w, _, Z in rows]
    if name == "check_gd_step":
        return [Case(label, {"w": w, "w_star": ws, "Z": Z, "eta": etas[i % len(etas)]})
                for i, (label, w, ws, Z) in enumerate(rows)]
    return [Case(label, {"w": w, "w_star": ws, "Z": Z}) for label, w, ws, Z in rows]


_FILTER_SHAPES = {
    "check_forward": (10, [(7, 1, 1), (5, 1, 3), (9, 4, 3), (6, 25, 9), (1, 3, 2)]),
    "check_loss": (90, [(50, 1, 2), (7, 1, 1), (30, 4, 3), (200, 9, 5)]),
    "check_population_gradient": (20, [(500, 1, 5), (7, 1, 1), (40, 1, 2), (1, 1, 3), (200, 1, 4)]),
    "check_conv_gradient": (30, [(300, 3, 4), (50, 1, 3), (20, 8, 1), (100, 5, 9), (2, 2, 2)]),
    "check_gd_step": (40, [(200, 1, 2), (60, 4, 3), (30, 1, 1), (100, 9, 5)]),
}


def _gamma_case(g, cube: bool, p, m, phi, scale, n=2000) -> Case:
    Z = torch.empty(n, 1, p, dtype=F64).uniform_(-1, 1, generator=g) if cube else randn(g, n, 1, p)
    w_star = randn(g, p)
    W = scale * theory.directions_at_angle(w_star, phi, m, generator=g)
    label = f"{'uniform cube' if cube else 'Gaussian'}, p={p}, {m} filter{'s' * (m > 1)} at φ = {phi:.4g}"
    return Case(label + (f", ‖w‖ = {scale:.4g}" if scale != 1 else ""), {"Z": Z, "w_star": w_star, "W": W})


def _rho_case(g, n, k, p, spread) -> Case:
    base = randn(g, n, 1, p)
    return Case(f"n={n}, k={k}, p={p}", {"Z": base + spread * randn(g, n, k, p)})


def _sgd_case(g, n, k, p, b, eta, draw_seed) -> Case:
    Z = randn(g, n, k, p)
    w_star, w = randn(g, p), randn(g, p)
    return Case(f"n={n}, k={k}, p={p}, batch_size={b}",
                {"w": w, "w_star": w_star, "Z": Z, "eta": eta, "batch_size": b, "generator": gen(draw_seed)})


def _public(name: str) -> list[Case]:
    if name in _FILTER_SHAPES:
        seed, shapes = _FILTER_SHAPES[name]
        return _filter_check(name, _filter_cases(seed, shapes))
    if name == "check_gamma":
        specs = [(2, 2, math.pi / 4, 1.0), (4, 16, math.pi / 8, 1.0), (3, 1, math.pi / 2, 1.0),
                 (5, 8, 3 * math.pi / 4, 2.5), (2, 2, 0.1, 1.0), (6, 32, math.pi / 3, 0.7)]
        return [_gamma_case(gen(50 + j), j % 2 == 1, *spec) for j, spec in enumerate(specs)]
    if name == "check_rho":
        out = [_rho_case(gen(60 + j), *spec) for j, spec in enumerate([(50, 4, 3, 0.3), (20, 1, 5, 1.0),
                                                                       (100, 9, 2, 1.0), (10, 2, 1, 0.5),
                                                                       (30, 25, 9, 0.05)])]
        same = randn(gen(69), 8, 1, 3).expand(8, 5, 3).contiguous()
        return out + [Case("n=8, k=5, p=3, all patches of an input equal", {"Z": same})]
    if name == "check_sgd_step":
        return [_sgd_case(gen(70 + j), *spec, 700 + j) for j, spec in enumerate(
            [(100, 1, 3, 1, 0.5), (50, 4, 5, 8, 0.2), (5, 2, 2, 16, 1.0), (200, 9, 4, 32, 0.05), (1, 1, 1, 3, 0.3)])]
    return [Case(f"m=20000, p={p}, radius={r}", {"m": 20_000, "p": p, "radius": r, "generator": gen(80 + j)},
                 {"ks": 1.95, "sign": 2.0})                                # check_ball_sampler: limits in 1/√m
            for j, (p, r) in enumerate([(2, 1.0), (1, 0.5), (3, 2.0), (10, 0.3), (25, 1.0 / math.sqrt(50))])]


# --------------------------------------------------------------------------------------------------------------
# Cases drawn from a seed: at least as many as the public ones, other sizes, edge cases first


def _drawn(name: str, seed: int, public: int) -> list[Case]:
    rnd = random.Random(f"filterlib.selfcheck/{name}/{seed}")       # the same cases on every machine
    count = max(public, 6)
    bits = lambda: rnd.getrandbits(62)                              # noqa: E731 (a seed for a torch generator)
    if name in _FILTER_SHAPES:
        return _drawn_filters(name, rnd, count)
    if name == "check_gamma":
        out = []
        for j in range(count):
            p = 2 if j == 0 else rnd.randint(2, 7)
            m = 1 if j == 1 else rnd.randint(1, 24)
            phi, scale = rnd.uniform(0.05, 3.0), (1.0 if j % 3 == 0 else round(rnd.uniform(0.3, 3.0), 3))
            out.append(_gamma_case(gen(bits()), rnd.random() < 0.5, p, m, phi, scale, n=rnd.randint(300, 1500)))
        return out
    if name == "check_rho":
        edges = [(1, 1, 3), (rnd.randint(2, 40), rnd.randint(2, 9), 1)]            # one input and k = 1; p = 1
        shapes = edges + [(rnd.randint(1, 60), rnd.randint(1, 16), rnd.randint(1, 8)) for _ in range(count - 2)]
        return [_rho_case(gen(bits()), n, k, p, rnd.choice([0.01, 0.1, 0.5, 1.0, 2.0])) for n, k, p in shapes]
    if name == "check_sgd_step":
        out = [_sgd_case(gen(bits()), 1, 1, 1, rnd.randint(1, 5), 0.5, bits())]     # n = 1: every draw is 0
        for _ in range(count - 1):
            n, k, p, b = rnd.randint(2, 150), rnd.randint(1, 9), rnd.randint(1, 6), rnd.randint(1, 40)
            out.append(_sgd_case(gen(bits()), n, k, p, b, round(rnd.uniform(0.01, 1.5), 3), bits()))
        return out
    out = []                                      # check_ball_sampler: stricter limits, as more cases are run
    for j in range(count):
        p, r = ([1, 2][j] if j < 2 else rnd.randint(3, 30)), round(rnd.uniform(0.05, 5.0), 4)
        out.append(Case(f"m=40000, p={p}, radius={r:g}", {"m": 40_000, "p": p, "radius": r, "generator": gen(bits())},
                        {"ks": 2.6, "sign": 2.5}))
    return out


def _drawn_filters(name: str, rnd: random.Random, count: int) -> list[Case]:
    one_patch = name == "check_population_gradient"
    rows = []
    for j in range(count):
        n = 1 if j == 0 else rnd.randint(2, 300)
        k = 1 if (one_patch or j == 1) else rnd.randint(1, 12)
        p = 1 if j == 2 else rnd.randint(1, 10)
        g = gen(rnd.getrandbits(62))
        cube = j % 2 == 1
        Z = (torch.empty(n, k, p, dtype=F64).uniform_(-1, 1, generator=g) if cube else randn(g, n, k, p))
        Z = Z * rnd.choice([0.1, 1.0, 3.0])
        w_star = randn(g, p)
        kind = ["random w", "w = w*", "w = c·w*", "small w"][j % 4]
        c = round(rnd.uniform(-2.0, 2.0), 3)
        w = {"random w": randn(g, p), "w = w*": w_star.clone(), "w = c·w*": c * w_star,
             "small w": 1e-3 * randn(g, p)}[kind]
        kind = kind.replace("c·", f"{c:g}·")
        rows.append((f"n={n}, k={k}, p={p}, {'cube' if cube else 'Gaussian'} Z, {kind}", w, w_star, Z))
    out = _filter_check(name, rows)
    if name == "check_gd_step":
        for case in out:
            case.args["eta"] = round(rnd.uniform(0.01, 2.5), 3)
    return out
