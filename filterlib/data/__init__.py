"""Data for the book: real MNIST, teacher filters, and a user's own images (chapters/mnist.md, chapters/diagnose.md).

The API, by module:

* :mod:`filterlib.data.mnist_idx`: :func:`mnist` (the bundled official files: 60,000 training and 10,000 test
  images; or the same files from a cache), :func:`mnist_cache_dir`, :data:`MNIST_CREDIT`, :data:`MNIST_MIRRORS`, :class:`DataIntegrityError`,
  :class:`MNISTNotFoundError`, and the checked idx-file pieces ``tools/fetch_mnist.py`` uses.
* :mod:`filterlib.data.teachers`: :func:`gabor` and :data:`PAPER_GABOR` (the Gabor teacher of Figure 3(d) and
  Figure 4(b)), :func:`resolve_teacher` (random, Gabor or a given array as w*).
* :mod:`filterlib.data.files`: :func:`load_images` and :func:`load_teacher` (a user's .npy/.npz/PNG files),
  :func:`read_images` (the images and how they were read) and :func:`describe` (that record as text),
  :func:`as_images` (any array of images as a checked float64 tensor (N, H, W)).
* :mod:`filterlib.data.natural`: :func:`natural_images` (seeded 1/f-noise images with a photograph's pixel
  statistics, chapters/diagnose.md).
"""
from .files import as_images, describe, load_images, load_teacher, read_images
from .mnist_idx import (BUNDLED_COUNT, MNIST_CREDIT, MNIST_MIRRORS, SOURCES, SPLITS, DataIntegrityError,
                        MNISTNotFoundError, mnist, mnist_cache_dir)
from .natural import natural_images
from .teachers import PAPER_GABOR, gabor, resolve_teacher

__all__ = ["BUNDLED_COUNT", "DataIntegrityError", "MNIST_CREDIT", "MNIST_MIRRORS", "MNISTNotFoundError",
           "PAPER_GABOR", "SOURCES", "SPLITS", "as_images", "describe", "gabor", "load_images", "load_teacher",
           "mnist", "mnist_cache_dir", "natural_images", "read_images", "resolve_teacher"]
