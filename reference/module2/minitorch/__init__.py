"""MiniTorch module 2: tensors, with the modules 0 and 1 they build on.

Every public name of the submodules is re-exported here, so course code and tests can
write `minitorch.tensor`, `minitorch.TensorData`, `minitorch.SimpleBackend`,
`minitorch.shape_broadcast` or `minitorch.prod` (which tensor_data re-exports). The
operators stay in their own namespace: `minitorch.operators.mul`.

As in the course's module-2 template, the Scalar files of module 1 are not imported
here: tensors need only operators, module and autodiff from earlier modules.
"""

# ruff: noqa: F401, F403, I001

from .testing import *
from .testing import MathTest, MathTestVariable
from .tensor_data import *
from .tensor import *
from .tensor_ops import *
from .tensor_functions import *
from .datasets import *
from .optim import *
from .module import *
from .autodiff import *
from . import operators
