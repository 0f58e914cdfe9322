"""Command line: ``python -m filterlib diagnose IMAGES --filter-size 5 [--stride 1] [--teacher gabor|random|FILE]
[--center] [--scale unit|none] [--json]`` (chapters/diagnose.md).

``--filter-size 3,5,7`` and ``--stride 1,2`` sweep every combination: one compact table (or, with ``--json``,
``{"sweep": [...]}`` with one entry per setting), each entry equal to a separate run with that setting. The report
says how the images were read (format, PNG modes, colour → grayscale weights, pixel scale); ``--center`` subtracts
each image's mean pixel, ``--scale`` chooses the pixel scale (default: unit for PNG files, as stored for arrays).

IMAGES is a .npy file, an .npz archive (its only array, or the one named ``images``) or a folder of PNG files, holding
images of shape (N, H, W). The output is a readable table, or with ``--json`` only JSON on stdout. A progress bar goes
to stderr (off with ``--no-progress`` or ``FILTERLIB_PROGRESS=0``). Files are checked before they are read: an array
or PNG pixels beyond ``--max-bytes`` (default ``FILTERLIB_MAX_BYTES`` or 2 GiB) are refused. Bad or unreadable input
(files, options, settings): a one-line error on stderr that names the file, option or variable, and exit status 2.
"""
from __future__ import annotations

import argparse
import math
import os
import sys

from . import config

EXIT_BAD_INPUT = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m filterlib",
                                     description="filterlib: tools around Du, Lee & Tian (2018), 'When is a "
                                                 "Convolutional Filter Easy To Learn?'")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    d = sub.add_parser("diagnose", help="is a filter easy to learn on my images? (the paper's constants, the "
                                        "theorems' conditions and steps, and a measured rate)",
                       description="Estimate γ, L, β, L_cross, ρ and μ on IMAGES for a teacher filter, check the "
                                   "conditions of Theorems 3.2 and 4.1, give the largest step they allow and the "
                                   "predicted iterations, and measure gradient descent's rate on the same patches.")
    d.add_argument("images", metavar="IMAGES", help=".npy or .npz file of shape (N, H, W), or a folder of PNG files")
    d.add_argument("--filter-size", type=_int_list("--filter-size"), required=True, metavar="S[,S...]",
                   help="filter side length S (S×S filter); several, e.g. 3,5,7, run a sweep")
    d.add_argument("--stride", type=_int_list("--stride"), default=[1], metavar="T[,T...]",
                   help="stride of the patches (default 1); several, e.g. 1,2, run a sweep")
    d.add_argument("--center", action="store_true",
                   help="subtract each image's mean pixel (a teacher is often dead on uncentred photographs)")
    d.add_argument("--scale", choices=("unit", "none"), default=None,
                   help="pixel scale: 'unit' (8-bit ÷ 255, 16-bit ÷ 65535; integer arrays ÷ their dtype's largest "
                        "value) or 'none' (values as stored); default: unit for PNG files, none for arrays")
    d.add_argument("--max-patches", type=int, default=250_000, metavar="N",
                   help="largest number of patches in the convolutional view; larger images are cropped at random "
                        "to fit, as the report says (default 250000; 0 = no limit)")
    d.add_argument("--teacher", default="random", metavar="gabor|random|FILE",
                   help="teacher filter: 'random' (N(0, I), from --seed; default), 'gabor' (the paper-experiment "
                        "Gabor filter) or a .npy file of shape (S, S) or (S·S,)")
    d.add_argument("--json", action="store_true", help="print only JSON on stdout")
    d.add_argument("--n-images", type=int, default=200, metavar="N",
                   help="use N images drawn at random (default 200; 0 = all)")
    d.add_argument("--n-patches", type=int, default=10_000, metavar="N",
                   help="patches for the one-neuron constants (default 10000; 0 = all)")
    d.add_argument("--n-directions", type=int, default=16, metavar="M",
                   help="random directions per angle in the estimators (default 16)")
    d.add_argument("--steps", type=int, default=300, help="gradient-descent steps for the measured rate (default 300)")
    d.add_argument("--eps", type=float, default=1e-3, help="target relative distance ε (default 1e-3)")
    d.add_argument("--phi0", type=float, default=math.pi / 6,
                   help="start angle bound φ₀ in radians; the start is at sin(φ₀)‖w*‖ from w* (default π/6)")
    d.add_argument("--eta", type=float, default=None, help="step size for both runs (default: the theorems' steps)")
    d.add_argument("--seed", type=int, default=0,
                   help="seed for the subsample, the teacher and the start (0 to 2**64 − 1)")
    d.add_argument("--max-bytes", default=None, metavar="SIZE",
                   help="largest array a file may declare, e.g. 4G (K, M, G, T: powers of 1024; default "
                        "FILTERLIB_MAX_BYTES or 2G)")
    d.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _int_list(option: str):
    """An argparse type: one positive int or a comma-separated list of them, e.g. 3,5,7."""
    def parse(text: str) -> list[int]:
        try:
            values = [int(t) for t in text.split(",") if t.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{option} must be a positive integer or a comma-separated list of "
                                             f"them (e.g. 3,5,7), got {text!r}") from None
        if not values or any(t < 1 for t in values):
            raise argparse.ArgumentTypeError(f"{option} must be positive integers, got {text!r}")
        return list(dict.fromkeys(values))
    return parse


def _diagnose(args) -> int:
    from . import _validate as v
    from .data import as_images, load_teacher, resolve_teacher
    from .data.files import read_images
    from .diagnosis import diagnose, diagnose_sweep

    seed = v.seed(args.seed, "--seed")
    limit = config.parse_bytes(args.max_bytes, "--max-bytes") if args.max_bytes is not None else config.max_bytes()
    sizes, strides = args.filter_size, args.stride
    teacher = args.teacher
    if teacher not in ("random", "gabor"):
        if len(sizes) > 1:
            raise ValueError(f"--teacher {args.teacher}: a teacher file has one size; sweep --filter-size with "
                             f"--teacher random or gabor")
        try:
            teacher = resolve_teacher(load_teacher(teacher, max_bytes=limit), sizes[0])[0]
        except (TypeError, ValueError) as exc:
            raise type(exc)(_about(f"teacher file {args.teacher} (--teacher)", exc)) from None
    try:
        raw, source = read_images(args.images, max_bytes=limit, scale=args.scale)
        images = as_images(raw)
    except (TypeError, ValueError) as exc:
        raise type(exc)(_about(f"images file {args.images}", exc)) from None
    if args.max_patches < 0:
        raise ValueError(f"--max-patches must be ≥ 0 (0 = no limit), got {args.max_patches}")
    progress = config.progress_enabled() and not args.no_progress
    kwargs = dict(n_images=args.n_images or None, n_patches=args.n_patches or None, phi0=args.phi0, eps=args.eps,
                  n_directions=args.n_directions, steps=args.steps, eta=args.eta, seed=seed, center=args.center,
                  max_patches=args.max_patches or None, source=source, progress=progress)
    if len(sizes) == 1 and len(strides) == 1:
        result = diagnose(images, sizes[0], strides[0], teacher, **kwargs)
        print(result.to_json(indent=2) if args.json else result.table())
        return 0
    sweep = diagnose_sweep(images, sizes, strides, teacher, **kwargs)
    print(sweep.to_json(indent=2) if args.json else sweep.text())
    return 0


def _about(what: str, exc: Exception) -> str:
    """``exc``'s message, led by ``what`` (the file and option) unless it already names the file."""
    message = str(exc)
    name = what.split(" (")[0].split(" file ", 1)[-1]
    return message if name in message else f"{what}: {message}"


def main(argv=None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit status. The command is
    described in chapters/diagnose.md."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "diagnose":
            return _diagnose(args)
    except BrokenPipeError:                                             # e.g. `... | head`: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except (OSError, ValueError, TypeError) as exc:
        print(f"python -m filterlib {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except MemoryError:
        print(f"python -m filterlib {args.command}: error: out of memory; use fewer images (--n-images) or patches "
              f"(--n-patches), or a smaller --max-bytes to refuse such files early", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_BAD_INPUT                                               # unreachable: argparse requires a command


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
