"""filterlib: the small library behind *filterbook*, an executable companion to
Du, Lee & Tian, "When is a Convolutional Filter Easy To Learn?" (ICLR 2018).

Modules, one concern each:

* :mod:`filterlib.config`: device (``FILTERLIB_DEVICE``), dtype, seeded generators, progress bars.
* :mod:`filterlib.model`: f(w, Z), the loss, its closed-form gradient, angles, image patches, the relative loss.
* :mod:`filterlib.kernel`: the arithmetic behind them, unchecked: the fused, chunked gradient pass, labels.
* :mod:`filterlib.distributions`: seeded samplers of patch distributions.
* :mod:`filterlib.theory`: one-neuron theory (A-matrices, γ, L, β estimators, Gaussian closed forms, Thm 3.2 bounds).
* :mod:`filterlib.data`: real MNIST (bundled 10k training images, or the full set from a cache), Gabor and other teacher
  filters (Fig. 3(c)/(d), Fig. 4), and a user's own images and teacher read from files.
* :mod:`filterlib.initialization`: random starts (Theorem 4.4, Cor. 4.1): ball/sphere samplers, exact success
  probabilities.
* :mod:`filterlib.train`: batched gradient descent and SGD returning a :class:`~filterlib.train.History`.
* :mod:`filterlib.teacher_student`: teacher-student learning on real images (Fig. 3(c)/(d), 4, 5): teacher labels,
  starts at a given distance, patch and curvature spectra, relative-loss and interpolation curves.
* :mod:`filterlib.widgets`: kernel-free slider widgets over precomputed figures.
* :mod:`filterlib.selfcheck`: the students' self-checks of their exercise answers.
* :mod:`filterlib.diagnosis`: :func:`diagnose` (the paper's constants, guarantees and a measured rate on a user's
  images) and its result types.
"""
from .config import default_dtype, device
from .rng import generator
from .diagnosis import diagnose
from .model import angle, forward, gradient, loss, patches
from .train import History, gradient_descent, sgd

__all__ = ["angle", "default_dtype", "device", "diagnose", "forward", "generator", "gradient", "gradient_descent",
           "History", "loss", "patches", "sgd"]
__version__ = "0.1.0"
