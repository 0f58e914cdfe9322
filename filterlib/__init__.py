"""filterlib: the small library behind *filterbook*, an executable companion to
Du, Lee & Tian, "When is a Convolutional Filter Easy To Learn?" (ICLR 2018).

This file is the API list. The work lives in small modules, one concern each; the chapters call them as
``fl.loss(...)``, ``theory.gamma(...)``, ``distributions.gaussian(...)`` and so on.

The model and its training
    * :mod:`filterlib.model`: f(w, Z), the loss, its closed-form gradient, angles, image patches, the relative
      loss (checked inputs).
    * :mod:`filterlib.kernel`: the arithmetic behind them, unchecked: the fused, chunked gradient pass, labels,
      the residual pass of the relative loss (chapters/performance.md).
    * :mod:`filterlib.train`: batched gradient descent and SGD returning a :class:`~filterlib.train.History`.
    * :mod:`filterlib.image_sgd`: :func:`sgd_images`, per-run-minibatch SGD on whole images (no patch tensor),
      compiled, for the MNIST experiment at the paper's budget (chapters/mnist.md).
Distributions, starts and data
    * :mod:`filterlib.distributions`: seeded samplers of patch distributions (Gaussian, angular, close patches …).
    * :mod:`filterlib.initialization`: random starts (Theorem 4.4, Corollary 4.1) and their exact success
      probabilities.
    * :mod:`filterlib.data`: real MNIST (the official 60,000 training and 10,000 test images, bundled), Gabor and
      other teacher filters, and a user's own images and teacher read from files.
The paper's theory, measured
    * :mod:`filterlib.theory` (a package): moments, the constants γ, L, β, L_cross, ρ, μ with error bars, Gaussian
      closed forms, and the bounds of Theorems 3.2 and 4.1.
    * :mod:`filterlib.teacher_student`: teacher–student learning on real images (Figures 3(c)/(d), 4 and 5):
      teacher labels, starts at a given distance, spectra, relative-loss and interpolation curves.
    * :mod:`filterlib.diagnosis` (a package): :func:`diagnose`, the paper's constants, guarantees and a measured
      rate on a user's images, :func:`diagnose_sweep` (one diagnosis per filter size and stride), and its result types (``python -m filterlib diagnose``).
The book's furniture
    * :mod:`filterlib.plots` and :mod:`filterlib.widgets`: figures from a History, kernel-free slider widgets.
    * :mod:`filterlib.selfcheck`: the students' self-checks of their exercise answers.
    * :mod:`filterlib.tables`: result tables, an HTML table in the book and aligned text in a terminal.
Settings
    * :mod:`filterlib.config`: device (``FILTERLIB_DEVICE``), dtype (``FILTERLIB_DTYPE``), progress bars.
    * :mod:`filterlib.rng`: seeded ``torch.Generator`` objects; filterlib never draws from torch's global RNG.
    * ``filterlib._validate`` (private): the one validation vocabulary every module checks its inputs with.

The names below are the ones a chapter needs most often, importable from ``filterlib`` itself.
"""
from .config import default_dtype, device
from .diagnosis import diagnose, diagnose_sweep
from .image_sgd import sgd_images
from .model import angle, forward, gradient, loss, patches, relative_loss
from .rng import generator
from .tables import Table
from .train import History, gradient_descent, sgd

__all__ = ["History", "Table", "angle", "default_dtype", "device", "diagnose", "diagnose_sweep", "forward",
           "generator", "gradient", "gradient_descent", "loss", "patches", "relative_loss", "sgd", "sgd_images"]
__version__ = "0.1.0"
