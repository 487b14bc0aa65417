"""Blocks written in Python: plug-ins (SPEC §9).

A plug-in is a ``.py`` file in a folder on ``CONVAS_BLOCKS_PATH`` (separated by
``os.pathsep``) or in the user's configuration folder's ``convas/blocks/``::

    from engine.plugins import Param, block

    @block(category="Normalisation", doc="Normalises groups of channels.",
           params=[Param("num_groups", int, 8, min=1, doc="groups the channels are split into")])
    def GroupNorm(in_shape, num_groups):        # the block's type is the function's name
        import torch.nn as nn
        return nn.GroupNorm(num_groups, in_shape[0])

The function gets the input shape without the batch (a list of shapes for
``inputs=2`` or more) and the parameters, and returns an ``nn.Module``. Everything
else comes from that: the block's output shape, parameter count and MACs are measured
by building the module and running it on meta tensors (cached per parameters and
input shapes), the receptive-field step comes from ``rf=(kernel, stride)`` (or a
function of the parameters giving that pair), and the
compiler and ``.py`` export call the function through a :class:`~engine.spec.Recipe`
like any built-in block.

Why files are checked when loaded rather than when used: a plug-in that cannot work
(a syntax error, an exception on import, a function that raises on a trial build with
its defaults or returns something that is not a module, a name already taken) is not
registered and is reported with its file and the reason, so every other block keeps
working and the user learns about it at start, not in the middle of a design.
Loading imports torch only when a plug-in declares a block (for its trial build);
importing this package never does.
"""

from __future__ import annotations

import inspect
import os
import re
import sys
import traceback
import types
from collections.abc import Callable, Iterable, Sequence
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import Any

from ..blocks import CATALOGUE, register, unregister
from ..errors import BlockError
from ..spec import BlockSpec, Params, ParamSpec, Recipe, Shape, pair_text

ENV_VAR = "CONVAS_BLOCKS_PATH"
int2 = "int2"  # Param("kernel", int2, 3): an int or a pair [h, w]
# Input shapes of the trial build: an image, else a vector (for blocks that need one).
TRIAL_SHAPES: tuple[Shape, ...] = ((16, 32, 32), (64,))
_CACHE_SIZE = 4096
_KINDS = {int: "int", float: "float", bool: "bool", str: "choice", "int": "int",
          "float": "float", "bool": "bool", "str": "choice", "int2": "int2"}


class PluginError(ValueError):
    """A plug-in block that cannot be registered; the message says why and what to do."""


@dataclass(frozen=True)
class Param:
    """One parameter of a plug-in block: ``Param("num_groups", int, 8, min=1, doc=...)``.

    ``type`` is ``int``, ``float``, ``bool``, ``str`` (with ``choices``) or ``"int2"``
    (:data:`int2`: an int or a pair ``[h, w]``, given to the function as a pair).
    """

    name: str
    type: Any
    default: Any
    _: KW_ONLY
    min: float | None = None
    max: float | None = None
    choices: Sequence[str] | None = None
    doc: str = ""

    def to_spec(self) -> ParamSpec:
        where = f"parameter {self.name!r}"
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise PluginError(f"{where} is not a valid Python name: use letters, digits and _")
        if self.name == "in_shape":
            raise PluginError(f"{where}: in_shape is the input shape, give it another name")
        kind = _KINDS.get(self.type) if isinstance(self.type, type | str) else None
        if kind is None:
            raise PluginError(f"{where} has type {self.type!r}: use int, float, bool, str "
                              f"(with choices) or int2")
        choices: tuple[str, ...] = ()
        if kind == "choice":
            choices = tuple(self.choices or ())
            if not choices or not all(isinstance(c, str) for c in choices):
                raise PluginError(f"{where} is a str: give its choices as strings, "
                                  f"e.g. choices=('nearest', 'bilinear')")
        elif self.choices:
            raise PluginError(f"{where}: only a str parameter takes choices")
        if kind in ("bool", "choice") and (self.min is not None or self.max is not None):
            raise PluginError(f"{where}: min and max are for numbers only")
        doc = self.doc.strip() if isinstance(self.doc, str) else ""
        spec = ParamSpec(self.name, kind, self.default, doc or f"The plug-in's {self.name}.",
                         self.min, self.max, choices)
        try:
            spec.normalize(self.default)
        except ValueError as exc:
            raise PluginError(f"{where}: the default {self.default!r} does not fit: {exc}") \
                from None
        return spec


@dataclass(frozen=True)
class PluginProblem:
    """A plug-in file, or one block in it, that was not loaded, and why."""

    file: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.reason}"


@dataclass
class _Declared:
    """One ``@block`` as written, before it is checked."""

    fn: Callable[..., Any]
    category: str
    doc: str
    params: tuple
    inputs: int
    rf: Any


@dataclass
class _State:
    loading: Path | None = None          # the file being executed, while it is
    pending: list[_Declared] = field(default_factory=list)
    problems: list[PluginProblem] = field(default_factory=list)
    blocks: dict[str, Path] = field(default_factory=dict)   # type → file, loaded now
    sources: dict[str, str] = field(default_factory=dict)   # file → its text when loaded
    modules: list[str] = field(default_factory=list)        # sys.modules entries we made
    folders: list[Path] | None = None    # searched by the last load; None: never loaded


_state = _State()


# ---- declaring blocks ------------------------------------------------------------------


def block(fn: Callable[..., Any] | None = None, *, category: str = "Custom", doc: str = "",
          params: Iterable[Param] = (), inputs: int = 1,
          rf: tuple[float, float] | Callable[[dict], tuple[float, float]] | None = None) -> Any:
    """Declare the decorated function a block (see the module docstring).

    In a plug-in file being loaded, the block is checked and registered once the file
    has run; anywhere else (a notebook), at once, raising :class:`PluginError` when it
    cannot work.
    """

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        declared = _Declared(f, category, doc, tuple(params), inputs, rf)
        if _state.loading is not None:
            _state.pending.append(declared)
        else:
            path = Path(inspect.getsourcefile(f) or "<unknown>")
            try:
                _state.sources.setdefault(str(path), path.read_text(encoding="utf-8"))
            except OSError:
                pass
            _add(declared, path)
        return f

    return decorate(fn) if fn is not None else decorate


def _add(declared: _Declared, path: Path) -> BlockSpec:
    spec = _make_spec(declared, path)
    _trial(spec)
    register(spec)
    _state.blocks[spec.type] = path
    return spec


def _make_spec(d: _Declared, path: Path) -> BlockSpec:
    fn = d.fn
    name = getattr(fn, "__name__", "")
    if not callable(fn) or not name.isidentifier():
        raise PluginError("@block decorates a function whose name becomes the block's type")
    if name in CATALOGUE:
        other = CATALOGUE[name].source
        where = "a built-in block" if other == "built-in" else f"already defined in {other}"
        raise PluginError(f"block {name}: that name is {where}: rename the function")
    if not isinstance(d.category, str) or not d.category.strip():
        raise PluginError(f"block {name}: category must be a non-empty string")
    if isinstance(d.inputs, bool) or not isinstance(d.inputs, int) or d.inputs < 1:
        raise PluginError(f"block {name}: inputs must be a whole number ≥ 1, not {d.inputs!r}")
    try:
        specs = tuple(p.to_spec() for p in d.params)
    except PluginError as exc:
        raise PluginError(f"block {name}: {exc}") from None
    except AttributeError:
        raise PluginError(f"block {name}: params must be a list of Param(...)") from None
    names = [p.name for p in specs]
    if len(set(names)) != len(names):
        raise PluginError(f"block {name}: two parameters share a name")
    try:
        inspect.signature(fn).bind(None, **dict.fromkeys(names))
    except TypeError:
        raise PluginError(f"block {name}: the function must take the input shape and the "
                          f"parameters {', '.join(names) or '(none)'}, but its signature is "
                          f"{name}{inspect.signature(fn)}") from None
    except ValueError:
        pass  # a callable without a signature: the trial build tells
    doc = d.doc.strip() if isinstance(d.doc, str) and d.doc.strip() else (
        (inspect.getdoc(fn) or "").strip().split("\n")[0] or f"A plug-in block from {path.name}.")
    measured = _measurer(name, fn, d.inputs)
    return BlockSpec(
        type=name, category=d.category.strip(), doc=doc, params=specs,
        infer=lambda p, ins: measured(p, ins)[0],
        id_prefix=name.lower(),
        subtitle=_subtitle,
        recipe=lambda p, ins: Recipe(fn, (ins[0] if d.inputs == 1 else list(ins),), dict(p)),
        count_params=lambda p, ins: measured(p, ins)[1],
        count_macs=lambda p, ins, out: measured(p, ins)[2],
        rf_steps=_rf_steps(name, d.rf),
        min_inputs=d.inputs, max_inputs=d.inputs, source=str(path))


def _rf_pair(rf: Any) -> tuple[float, float] | None:
    """``(kernel, stride)`` as two positive numbers, or None when ``rf`` is not that."""
    try:
        k, s = rf
    except (TypeError, ValueError):
        return None
    ok = all(isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in (k, s))
    return (k, s) if ok else None


def _rf_steps(name: str, rf: Any) -> Callable[[Params, list[Shape]], list[tuple[float, float]]]:
    """``rf=(kernel, stride)``, or a function of the parameters giving that pair, for a
    block whose stride is a parameter: ``rf=lambda p: (3, p["stride"])``."""
    if rf is None:
        return lambda p, ins: []
    if callable(rf):
        def steps(p: Params, ins: list[Shape]) -> list[tuple[float, float]]:
            pair = _rf_pair(rf(dict(p)))
            if pair is None:
                raise BlockError(f"the plug-in's rf function gave {rf(dict(p))!r}: it must "
                                 f"return (kernel, stride), two positive numbers")
            return [pair]
        return steps
    pair = _rf_pair(rf)
    if pair is None:
        raise PluginError(f"block {name}: rf must be (kernel, stride), two positive numbers, "
                          f"or a function of the parameters returning them, not {rf!r}")
    return lambda p, ins: [pair]


def _subtitle(p: Params) -> str:
    """The first two parameters, e.g. ``num_groups 8``."""
    parts = []
    for key, value in list(p.items())[:2]:
        if isinstance(value, float):
            value = f"{value:g}"
        elif isinstance(value, tuple):
            value = pair_text(value)
        parts.append(f"{key} {value}")
    return " · ".join(parts)


def _measurer(name: str, fn: Callable[..., Any], inputs: int):
    """(output shape, parameters, MACs) of ``fn``'s module for params and input shapes,
    measured once per distinct pair: re-analysis after an edit must stay fast."""
    cache: dict[tuple, tuple | str] = {}

    def measured(p: Params, ins: list[Shape]) -> tuple[Shape, int, int]:
        key = (tuple(p.values()), tuple(ins))
        hit = cache.get(key)
        if hit is None:
            from .measure import measure

            try:
                hit = measure(fn, inputs, dict(p), list(ins))
            except BlockError as exc:
                hit = str(exc)
            if len(cache) >= _CACHE_SIZE:
                cache.clear()
            cache[key] = hit
        if isinstance(hit, str):
            raise BlockError(f"{name} {hit}: change its parameters or its input")
        return hit

    measured.cache = cache  # type: ignore[attr-defined]
    return measured


def _trial(spec: BlockSpec) -> None:
    """Build and run the block with its defaults on a typical input, or refuse it."""
    params = {p.name: p.normalize(p.default) for p in spec.params}
    first = None
    for shape in TRIAL_SHAPES:
        try:
            spec.infer(params, [shape] * spec.min_inputs)
            return
        except BlockError as exc:
            first = first or str(exc).removesuffix(": change its parameters or its input")
    raise PluginError(f"block {first} (trial build with its default parameters): fix the "
                      f"function or its defaults")


# ---- loading files -----------------------------------------------------------------------


def config_folder() -> Path:
    """The user's configuration folder (``~/.config`` or ``$XDG_CONFIG_HOME`` on Linux)."""
    home = Path.home()
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA") or home / "AppData" / "Roaming")
    if sys.platform == "darwin":
        return home / "Library" / "Application Support"
    return Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")


def search_folders() -> list[Path]:
    """Where plug-ins are looked for: ``CONVAS_BLOCKS_PATH``, then the user's folder."""
    env = os.environ.get(ENV_VAR, "")
    folders = [Path(p).expanduser() for p in env.split(os.pathsep) if p.strip()]
    return folders + [config_folder() / "convas" / "blocks"]


def searched_folders() -> list[Path]:
    """The folders of the last load (or those a load would search now)."""
    return list(_state.folders) if _state.folders is not None else search_folders()


def folders_text() -> str:
    return ", ".join(str(f) for f in searched_folders())


def load_plugins(folders: Iterable[str | os.PathLike] | None = None) -> list[PluginProblem]:
    """Load every ``.py`` file of ``folders`` (default :func:`search_folders`), replacing
    the plug-ins loaded before; returns the problems, also kept in :func:`problems`."""
    unload_plugins()
    optional = config_folder() / "convas" / "blocks"
    chosen = search_folders() if folders is None else [Path(f) for f in folders]
    _state.folders = chosen
    seen: set[Path] = set()
    for folder in chosen:
        key = folder.resolve() if folder.exists() else folder
        if key in seen:
            continue
        seen.add(key)
        if not folder.is_dir():
            if folder != optional:
                _state.problems.append(PluginProblem(
                    folder, f"is not a folder: fix {ENV_VAR} (folders separated by "
                            f"{os.pathsep!r})"))
            continue
        for path in sorted(folder.glob("*.py")):
            if not path.name.startswith("."):
                _load_file(path)
    return list(_state.problems)


def loaded_folders() -> list[str] | None:
    """The folders of the last :func:`load_plugins`, None if it never ran: a child
    process loads the same ones."""
    return None if _state.folders is None else [str(f) for f in _state.folders]


def ensure_loaded() -> None:
    """Load the plug-ins once per process, when nothing asked for them yet (a design
    read in a child process or a script that never called :func:`load_plugins`)."""
    if _state.folders is None:
        load_plugins()


def unload_plugins() -> None:
    """Forget every plug-in block and problem (built-in blocks stay)."""
    for type_name in _state.blocks:
        unregister(type_name)
    for name in _state.modules:
        sys.modules.pop(name, None)
    _state.blocks.clear()
    _state.problems.clear()
    _state.modules.clear()
    _state.sources.clear()
    _state.pending = []


def problems() -> list[PluginProblem]:
    """The plug-ins the last load refused, with the reason."""
    return list(_state.problems)


def describe_problems(found: Sequence[PluginProblem]) -> str:
    """One line for a status bar: the first broken plug-in, and how many more."""
    if not found:
        return ""
    more = f" (and {len(found) - 1} more: see Problems)" if len(found) > 1 else ""
    return f"plug-in not loaded: {found[0]}{more}"


def loaded_blocks() -> dict[str, Path]:
    """Plug-in block types now in the catalogue, with their files."""
    return dict(_state.blocks)


def file_source(path: str | os.PathLike) -> str | None:
    """The text a plug-in file had when it was loaded (what the ``.py`` export copies)."""
    return _state.sources.get(str(path))


def _load_file(path: Path) -> None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        _state.problems.append(PluginProblem(path, f"cannot be read: {exc}"))
        return
    name = re.sub(r"\W", "_", f"convas_plugin_{path.stem}_{len(_state.modules)}")
    module = types.ModuleType(name)
    module.__file__ = str(path)
    sys.modules[name] = module  # dataclasses and pickling look classes up there
    _state.modules.append(name)
    _state.loading, _state.pending = path, []
    try:
        exec(compile(text, str(path), "exec"), module.__dict__)  # noqa: S102 - the user's plug-in
    except SyntaxError as exc:
        _state.problems.append(PluginProblem(path, f"syntax error at line {exc.lineno}: "
                                                   f"{exc.msg}; nothing in it was loaded"))
        return
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - any plug-in failure is reported
        _state.problems.append(PluginProblem(
            path, f"raises {type(exc).__name__}{_line(exc, path)} on import: {exc}; nothing "
                  f"in it was loaded"))
        return
    finally:
        _state.loading = None
    _state.sources[str(path)] = text
    for declared in _state.pending:
        try:
            _add(declared, path)
        except PluginError as exc:
            _state.problems.append(PluginProblem(path, str(exc)))
    _state.pending = []


def _line(exc: BaseException, path: Path) -> str:
    lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)]
    return f" at line {lines[-1]}" if lines else ""


__all__ = ["ENV_VAR", "Param", "PluginError", "PluginProblem", "block", "config_folder",
           "describe_problems", "ensure_loaded", "file_source", "folders_text", "int2",
           "load_plugins", "loaded_blocks", "loaded_folders", "problems", "search_folders",
           "searched_folders", "unload_plugins"]
