"""The simulator's exception tree. Every error carries the data a caller needs to report it."""

from __future__ import annotations

from collections.abc import Sequence


class SimError(Exception):
    """Base of every error raised by ``misto.sim``.

    ``retryable`` says whether doing the same thing again later may succeed (a port still in
    use) or not (a bad device spec, a broken register map).
    """

    retryable = False


class ModelError(SimError):
    """A device model (register map and signals) is inconsistent. ``problems`` lists every
    problem found, each naming its path, such as ``aq1.registers[2].address: ...``."""

    def __init__(self, model: str, problems: Sequence[str]) -> None:
        self.model = model
        self.problems = tuple(problems)
        super().__init__(f"device model {model!r} is invalid:\n  " + "\n  ".join(self.problems))


class UnknownModelError(SimError):
    """No device model has this name."""

    def __init__(self, model: str, known: Sequence[str]) -> None:
        self.model = model
        self.known = tuple(known)
        super().__init__(f"unknown model {model!r}; known models: {', '.join(self.known)}")


class SpecError(SimError):
    """A device spec such as ``aq1@127.0.0.1:5020/1`` cannot be used."""

    def __init__(self, spec: str, reason: str) -> None:
        self.spec = spec
        self.reason = reason
        super().__init__(f"device spec {spec!r}: {reason}")


class EncodingError(SimError):
    """A value cannot be put into its register (it is not a finite number)."""

    def __init__(self, metric: str, value: float, reason: str) -> None:
        self.metric = metric
        self.value = value
        self.reason = reason
        super().__init__(f"{metric}={value}: {reason}")


class ServeError(SimError):
    """A device server could not start listening (for instance, its port is in use)."""

    retryable = True

    def __init__(self, host: str, port: int, reason: str) -> None:
        self.host = host
        self.port = port
        self.reason = reason
        super().__init__(f"cannot listen on {host}:{port}: {reason}")


class StateFileError(SimError):
    """The state file cannot be written (checked when the simulator starts)."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"cannot write state file {path}: {reason}")
