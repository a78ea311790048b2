"""The Gradio pieces the studio's page is built from (needs the `web` extra): the import with
its install hint, a control built from a DreamConfig field's metadata, a visitor's error as one
line, an event function whose parameters are the controls' names (what API clients pass by
keyword), and the visitor's session."""

# no `from __future__ import annotations`: Gradio finds gr.Request parameters by annotation
import inspect
import sys
from collections.abc import Callable
from typing import Any, Optional

from inceptionism.engine.config import DreamConfig
from inceptionism.errors import MissingExtraError
from inceptionism.studio.recipe import public

# samples one click away, each with a preset that suits it
EXAMPLES = [
    ("sample:coffee", "default"),
    ("sample:chelsea", "google-classic"),
    ("sample:astronaut", "keras-classic"),
    ("sample:rocket", "tf-tutorial"),
]
SOURCE_LABELS = [
    ("what I gave: upload, else sample, else noise", "auto"),
    ("upload", "upload"),
    ("sample", "sample"),
    ("noise", "noise"),
]


def import_gradio():
    try:
        import gradio as gr
    except ImportError:
        raise MissingExtraError("the web studio (Gradio)", "web") from None
    return gr


def field_widget(gr: Any, name: str, value: Any) -> Any:
    """A control for a DreamConfig field, from its metadata: a dropdown for choices, a checkbox
    for a flag, a bounded number for a range, else a text box; the field's help as its info."""
    meta = DreamConfig.__dataclass_fields__[name].metadata
    label, info = name.replace("_", " ").capitalize(), meta["help"]
    if meta.get("choices"):
        return gr.Dropdown(list(meta["choices"]), value=value, label=label, info=info)
    if isinstance(getattr(DreamConfig(), name), bool):
        return gr.Checkbox(value=value, label=label, info=info)
    if meta.get("lo") is not None:
        return gr.Number(value=value, minimum=meta["lo"], maximum=meta["hi"], label=label,
                         info=info, precision=0 if meta["integer"] else None)  # fmt: skip
    return gr.Textbox(value=str(value), label=label, info=info)


def user_error(gr: Any, e: Exception, *paths: str | None) -> Exception:
    """A visitor's mistake: one line on the page, one line in the server log, no traceback."""
    message = public(str(e), *paths)
    print(f"studio: {message}", file=sys.stderr, flush=True)
    return gr.Error(message, print_exception=False)


def keyword_fn(names: list[str], impl: Callable, gr: Any) -> Callable:
    """``impl(request, progress, *values)`` as a function whose parameters are ``names`` (what
    an API client passes by keyword; a component's value is its default, else None), then a
    gr.Request and a gr.Progress."""

    def fn(*args):
        *values, request, progress = args
        return impl(request, progress, *values)

    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    params = [inspect.Parameter(n, kind, default=None) for n in names]
    request = Optional[gr.Request]  # noqa: UP045 (Gradio compares the hint with Optional)
    params.append(inspect.Parameter("request", kind, default=None, annotation=request))
    params.append(inspect.Parameter("progress", kind, default=gr.Progress()))
    fn.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    fn.__annotations__ = {"request": request}
    if inspect.isgeneratorfunction(impl):

        def gen(*args):
            *values, request, progress = args
            yield from impl(request, progress, *values)

        gen.__signature__ = fn.__signature__  # type: ignore[attr-defined]
        gen.__annotations__ = fn.__annotations__
        return gen
    return fn


def session_of(request: Any) -> str:
    """The visitor's session: Cancel stops this visitor's dream, not another's."""
    return str(getattr(request, "session_hash", "") or "")
