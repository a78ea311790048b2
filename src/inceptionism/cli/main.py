"""The ``inceptionism`` command: the group, and the entry point that turns every error into one
line. The commands live in their own modules (cli/catalog.py says which), imported only when
one runs or shows its help: `inceptionism --help`, `presets` and `samples` answer without
loading torch.

Every user error ends as one line on stderr and exit code 2 (a failing outside tool: 1); nothing
is half-written.
"""

from __future__ import annotations

import importlib
import sys
import warnings

import click

from inceptionism._version import __version__
from inceptionism.cli.catalog import COMMANDS
from inceptionism.cli.params import echo_error
from inceptionism.errors import InceptionismError, InceptionismWarning

EXAMPLES = """\b
Examples:
  inceptionism dream sample:grace_hopper -o dream.png
  inceptionism dream photo.jpg -o dream.png --preset keras-classic --steps 10
  inceptionism replay dream.png -o again.png
"""


class LazyGroup(click.Group):
    """A group whose commands are imported when asked for by name; its own help lists them
    from the catalogue."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context | None, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module = importlib.import_module(COMMANDS[name][0])
        command: click.Command = getattr(module, name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]},
             invoke_without_command=True, epilog=EXAMPLES)  # fmt: skip
@click.version_option(__version__, prog_name="inceptionism")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """DeepDream on PyTorch: dream photos with pretrained networks, offline."""
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


def main(argv: list[str] | None = None) -> int:
    """Console entry point: one line per error, exit code 2 for anything the user can fix.

    Library warnings (Pillow's about a file's EXIF, torch's) are held until the command ends:
    after a success each is shown once, as one line; after an error the error's line is all
    that is shown."""
    args = sys.argv[1:] if argv is None else argv
    with warnings.catch_warnings(record=True) as caught:
        code = _run(args)
    if code == 0:
        for line in dict.fromkeys(_warning_line(w) for w in caught):
            click.echo(line, err=True)
    return code


def _warning_line(w: warnings.WarningMessage) -> str:
    text = " ".join(str(w.message).split())
    if issubclass(w.category, InceptionismWarning):  # ours: the message says it all
        return f"inceptionism: warning: {text}"
    return f"inceptionism: warning: {text} ({w.category.__name__})"


def _run(args: list[str]) -> int:
    try:
        cli.main(args=args, prog_name="inceptionism", standalone_mode=False)
    except InceptionismError as e:
        echo_error(str(e))
        return e.exit_code
    except OSError as e:  # a write that failed (disk full, permissions, a vanished folder)
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        echo_error(f"{where}{e.strerror or e}")
        return 2
    except click.UsageError as e:
        hint = f" (see '{e.ctx.command_path} --help')" if e.ctx else ""
        echo_error(e.format_message().replace("\n", " ") + hint)
        return 2
    except click.exceptions.Exit as e:
        return e.exit_code
    except (click.Abort, KeyboardInterrupt):
        if sys.stderr.isatty():
            click.echo("", err=True)  # leave the progress line
        echo_error("interrupted; finished outputs are kept")
        return 130
    except ValueError as e:  # int() of a number of over 4300 digits that no check caught
        if "integer string conversion" not in str(e):
            raise
        echo_error("a number in the command line or a file has over 4300 digits")
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
