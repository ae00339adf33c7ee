"""The shape issue 23 asks of app/: keyword-only arguments past three, no function over 60 lines,
no module over 400 lines.

Every module under app/ is parsed (never imported), so this runs without a database. A failure
names each offender as `path:line name`.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "app"

MAX_POSITIONAL = 3
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 400

HTTP_VERBS = {"get", "post", "put", "patch", "delete", "head", "options", "api_route"}

# Signatures a library fixes: it calls them positionally, so they keep their shape.
CALLBACKS = {
    "app/storage/db.py:_connect",  # SQLAlchemy's do_connect: (dialect, conn_rec, cargs, cparams)
}


Function = ast.FunctionDef | ast.AsyncFunctionDef


def _functions(tree: ast.Module) -> Iterator[tuple[str, Function, bool]]:
    """Each function with its dotted name and whether it is defined directly in a class."""

    def walk(node: ast.AST, prefix: str, in_class: bool) -> Iterator[tuple[str, Function, bool]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = prefix + child.name
                yield name, child, in_class
                yield from walk(child, name + ".", False)
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, prefix + child.name + ".", True)
            else:
                yield from walk(child, prefix, in_class)

    yield from walk(tree, "", False)


def _is_route(function: Function) -> bool:
    """`@<something>.<http verb>(...)`: FastAPI passes a route handler's parameters by name."""
    for decorator in function.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if isinstance(target, ast.Attribute) and target.attr in HTTP_VERBS:
            return True
    return False


def _positional(function: Function, in_class: bool) -> int:
    params = [*function.args.posonlyargs, *function.args.args]
    if in_class and params and params[0].arg in {"self", "cls"}:
        params = params[1:]
    return len(params)


def _shape(source: str, module: str) -> dict[str, list[str]]:
    """One module's offenders against each rule, as `path:line name: why`, and the exempt
    callbacks it defines."""
    found: dict[str, list[str]] = {"positional": [], "long": [], "module": [], "callbacks": []}
    lines = len(source.splitlines())
    if lines > MAX_MODULE_LINES:
        found["module"].append(f"{module}: {lines} lines")
    for name, function, in_class in _functions(ast.parse(source, filename=module)):
        key, where = f"{module}:{name}", f"{module}:{function.lineno} {name}"
        if key in CALLBACKS:
            found["callbacks"].append(key)
        count = _positional(function, in_class)
        if count > MAX_POSITIONAL and not (
            (function.name.startswith("__") and function.name.endswith("__"))
            or key in CALLBACKS
            or (module.startswith("app/api/") and _is_route(function))
        ):
            found["positional"].append(f"{where}: {count} positional parameters")
        length = function.end_lineno - function.lineno + 1
        if length > MAX_FUNCTION_LINES:
            found["long"].append(f"{where}: {length} lines")
    return found


@functools.cache
def _offenders() -> dict[str, list[str]]:
    """Every module's offenders, by rule."""
    found: dict[str, list[str]] = {}
    for path in sorted(APP.rglob("*.py")):
        module = path.relative_to(APP.parent).as_posix()
        for rule, offenders in _shape(path.read_text(), module).items():
            found.setdefault(rule, []).extend(offenders)
    return found


def test_parameters_past_the_third_are_keyword_only() -> None:
    offenders = _offenders()["positional"]
    assert not offenders, "make parameters past the third keyword-only:\n" + "\n".join(offenders)


def test_no_function_is_over_60_lines() -> None:
    offenders = _offenders()["long"]
    assert not offenders, "split these functions:\n" + "\n".join(offenders)


def test_no_module_is_over_400_lines() -> None:
    offenders = _offenders()["module"]
    assert not offenders, "split these modules:\n" + "\n".join(offenders)


def test_every_exempt_callback_exists() -> None:
    assert set(_offenders()["callbacks"]) == CALLBACKS


def test_the_rules_see_what_they_should() -> None:
    source = "\n".join(
        [
            "class Thing:",
            "    def method(self, a, b, c): ...",
            "    def __call__(self, a, b, c, d): ...",
            "def four(a, b, /, c, d): ...",
            "def keyword(a, b, c, *, d, e): ...",
            '@router.post("/things")',
            "async def handler(a, b, c, d): ...",
            "def long():",
            *["    pass"] * 60,
        ]
    )
    found = _shape(source, "app/api/things.py")
    assert found["positional"] == ["app/api/things.py:4 four: 4 positional parameters"]
    assert found["long"] == ["app/api/things.py:8 long: 61 lines"]
    assert _shape(source, "app/notices/things.py")["positional"] == [  # routes: only in app/api
        "app/notices/things.py:4 four: 4 positional parameters",
        "app/notices/things.py:7 handler: 4 positional parameters",
    ]
    assert _shape("pass\n" * 401, "app/big.py")["module"] == ["app/big.py: 401 lines"]
