"""Timers around the per-transaction phases of a py-evm VM (plugin or stock), for the
benchmarks only: instrumented subclasses, no change to fee_plugin or py-evm.

A timer wraps a method with two `perf_counter` calls (about 0.1 µs each); both sides of a
comparison carry the same wrappers around the same phases.
"""
import contextlib
import time
from typing import Dict, Iterable

EXECUTOR_PHASES = ("validate_transaction", "build_evm_message", "build_computation",
                   "finalize_computation")
PLUGIN_EXECUTOR_PHASES = ("_validate_common", "_choose_payment", "_validate_lot_paid")
VM_PHASES = ("make_receipt", "validate_receipt")


class Timers:
    """Accumulated seconds per phase for whichever side is currently running."""

    def __init__(self) -> None:
        self.seconds: Dict[str, float] = {}
        self.counts: Dict[str, int] = {}
        self.phase = "other"  # "finalize" while finalize_computation runs

    def add(self, name: str, dt: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + dt
        self.counts[name] = self.counts.get(name, 0) + 1

    def reset(self) -> None:
        self.seconds, self.counts, self.phase = {}, {}, "other"


ACTIVE = Timers()  # the timers of the side that runs now (set by the runner)


def activate(timers: Timers) -> Timers:
    global ACTIVE
    ACTIVE = timers
    timers.reset()
    return timers


def _timed(fn, name):
    def wrapper(*args, **kwargs):
        timers = ACTIVE
        outer = timers.phase
        if name == "finalize_computation":
            timers.phase = "finalize"
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            timers.add(name, time.perf_counter() - start)
            timers.phase = outer
    wrapper.__name__ = getattr(fn, "__name__", name)
    return wrapper


def instrumented_vm(vm_class, executor_phases: Iterable[str] = EXECUTOR_PHASES, executor_mixin=None):
    """A subclass of `vm_class` whose executor phases, receipt building and receipt
    validation are timed into `ACTIVE`. `executor_mixin` (optional) is placed first in the
    executor's bases (the in-EVM charge variant)."""
    state_class = vm_class.get_state_class()
    executor = state_class.transaction_executor_class
    if executor_mixin is not None:
        executor = type(f"{executor_mixin.__name__}{executor.__name__}", (executor_mixin, executor), {})
    namespace = {name: _timed(getattr(executor, name), name) for name in executor_phases}
    timed_executor = type(f"Timed{executor.__name__}", (executor,), namespace)
    timed_state = type(f"Timed{state_class.__name__}", (state_class,),
                       {"transaction_executor_class": timed_executor})
    vm_namespace = {"_state_class": timed_state}
    for name in VM_PHASES:
        vm_namespace[name] = _timed_attribute(vm_class, name)
    return type(f"Timed{vm_class.__name__}", (vm_class,), vm_namespace)


def _timed_attribute(cls, name):
    """A timed copy of cls.<name>, keeping its kind (function, classmethod, staticmethod)."""
    for klass in cls.__mro__:
        if name in vars(klass):
            raw = vars(klass)[name]
            break
    if isinstance(raw, classmethod):
        return classmethod(_timed(raw.__func__, name))
    if isinstance(raw, staticmethod):
        return staticmethod(_timed(raw.__func__, name))
    return _timed(raw, name)


@contextlib.contextmanager
def timed_functions(module, names: Iterable[str]):
    """Time module-level functions (e.g. fee_plugin.executor's load_account) into ACTIVE;
    `load_account` is split by phase (fee account read at validation vs in the charge)."""
    originals = {name: getattr(module, name) for name in names}

    def wrap(name, fn):
        def wrapper(*args, **kwargs):
            timers = ACTIVE
            label = f"{name}@{timers.phase}" if name == "load_account" else name
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                timers.add(label, time.perf_counter() - start)
        return wrapper

    try:
        for name, fn in originals.items():
            setattr(module, name, wrap(name, fn))
        yield
    finally:
        for name, fn in originals.items():
            setattr(module, name, fn)
