"""MiniTorch modules 0 and 1: operators, modules, scalar autodiff and a tiny optimizer.

Every public name of the submodules is re-exported here, so course code can write
`minitorch.Scalar`, `minitorch.Module` or `minitorch.datasets["Simple"]`. The operators
stay in their own namespace: `minitorch.operators.mul`.
"""

# ruff: noqa: F401, F403, I001

from .autodiff import *
from .datasets import *
from .module import *
from .optim import *
from .scalar import *
from .scalar_functions import *
from .testing import *
from .testing import MathTest, MathTestVariable
