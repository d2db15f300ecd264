"""MiniTorch modules 0 and 1: scalar autodiff, modules and a tiny optimizer.

Every public name of the submodules is re-exported here, so course code can write
`minitorch.Scalar`, `minitorch.Module` or `minitorch.datasets["Simple"]`. The order is
deliberate: the provided modules come last, so their names (`datasets`, `SGD`) win over
anything a student file happens to export.
"""

# ruff: noqa: F403, I001

from .autodiff import *
from .scalar import *
from .scalar_functions import *
from .module import *
from .operators import *
from .optim import *
from .datasets import *
