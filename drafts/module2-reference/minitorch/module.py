"""Modules and parameters (task 0.4).

A `Module` is a tree: attributes that hold a `Module` become children, attributes that
hold a `Parameter` become its own parameters. The tree lets an optimizer find every
parameter of a network and lets `train()` / `eval()` switch the whole network at once.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Module", "Parameter"]


class Module:
    """A node of a network: its own parameters plus child modules.

    Attributes:
        _modules: child modules by attribute name.
        _parameters: this module's own parameters by attribute name.
        training: True in training mode, False in evaluation mode.
    """

    _modules: dict[str, Module]
    _parameters: dict[str, Parameter]
    training: bool

    def __init__(self) -> None:
        self._modules = {}
        self._parameters = {}
        self.training = True

    def modules(self) -> list[Module]:
        """Return the direct children of this module (not grandchildren)."""
        m: dict[str, Module] = self.__dict__["_modules"]
        return list(m.values())

    def train(self) -> None:
        """Set `training = True` on this module and on every descendant."""
        # BEGIN SOLUTION task=0.4
        self.training = True
        for child in self.modules():
            child.train()
        # END SOLUTION

    def eval(self) -> None:
        """Set `training = False` on this module and on every descendant."""
        # BEGIN SOLUTION task=0.4
        self.training = False
        for child in self.modules():
            child.eval()
        # END SOLUTION

    def named_parameters(self) -> list[tuple[str, Parameter]]:
        """Collect the parameters of this module and of all its descendants.

        Returns:
            A list of (name, Parameter) pairs. A descendant's parameter is named by the
            path of attribute names leading to it: parameter `p1` of child `b` of child
            `a` is `"a.b.p1"`.
        """
        # BEGIN SOLUTION task=0.4
        named = list(self._parameters.items())
        for child_name, child in self._modules.items():
            for name, parameter in child.named_parameters():
                named.append((f"{child_name}.{name}", parameter))
        return named
        # END SOLUTION

    def parameters(self) -> list[Parameter]:
        """Return every Parameter of this module and of all its descendants."""
        # BEGIN SOLUTION task=0.4
        return [parameter for _, parameter in self.named_parameters()]
        # END SOLUTION

    def add_parameter(self, name: str, value: Any) -> Parameter:
        """Wrap `value` in a Parameter, register it under `name` and return it.

        Useful when parameters live in lists (one per weight) rather than attributes.
        """
        parameter = Parameter(value, name)
        self.__dict__["_parameters"][name] = parameter
        return parameter

    def __setattr__(self, name: str, value: Any) -> None:
        # Assigning a Module or a Parameter registers it in the tree; anything else is
        # an ordinary attribute.
        if isinstance(value, Parameter):
            self.__dict__["_parameters"][name] = value
        elif isinstance(value, Module):
            self.__dict__["_modules"][name] = value
        else:
            super().__setattr__(name, value)

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails: registered parameters and children are
        # found by name, and any other missing attribute reads as None.
        if name in self.__dict__["_parameters"]:
            return self.__dict__["_parameters"][name]
        if name in self.__dict__["_modules"]:
            return self.__dict__["_modules"][name]
        return None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def __repr__(self) -> str:
        # One line per child, indented under its parent, like PyTorch prints networks.
        children = "".join(
            f"\n  ({name}): " + repr(child).replace("\n", "\n  ")
            for name, child in self._modules.items()
        )
        return f"{type(self).__name__}({children}\n)" if children else f"{type(self).__name__}()"


class Parameter:
    """A value that training updates, e.g. a Scalar weight.

    Attributes:
        value: the wrapped value.
        name: an optional name (`add_parameter` passes the attribute name).
    """

    def __init__(self, x: Any, name: str | None = None) -> None:
        self.value = x
        self.name = name
        self._track(x)

    def update(self, x: Any) -> None:
        """Replace the wrapped value (an optimizer step does this)."""
        self.value = x
        self._track(x)

    def _track(self, x: Any) -> None:
        # Values that can opt into gradient tracking (tensors, in later modules) are told
        # to do so; Scalars always track, so for them this does nothing.
        if hasattr(x, "requires_grad_"):
            x.requires_grad_(True)
            if self.name:
                x.name = self.name

    def __repr__(self) -> str:
        return repr(self.value)

    def __str__(self) -> str:
        return str(self.value)
