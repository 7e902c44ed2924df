"""Plain command-line errors: an EA2D model that cannot be built ends ``anomalib ...`` with its one message.

anomalib's CLI has jsonargparse build the model from the parsed config. jsonargparse tries the
config against each member of the model argument's type union and catches every ``Exception``
the constructor raises, so a clear message of ours (no ImageNet weights on an offline machine)
reached the user inside "Does not validate against any of the Union subtypes", under two
tracebacks. :func:`report_plainly` gives anomalib's CLI a jsonargparse instantiator for EA2D
classes that turns the errors of :data:`PLAIN_ERRORS` into :class:`PlainExit`, a ``SystemExit``:
jsonargparse lets it through, and Python prints its message alone and exits with status 1.
Outside the command line (``EA2D(...)`` in Python) these errors stay ordinary exceptions.

The start-up hook (:mod:`anomalib_ea2d._hook`) applies :func:`report_plainly` when
``anomalib.cli.cli`` is imported.
"""

from __future__ import annotations

from typing import Any

from anomalib_ea2d._hook import before_instantiate_classes
from anomalib_ea2d.models.components.backbone import OfflineWeightsError

PLAIN_ERRORS: tuple[type[Exception], ...] = (OfflineWeightsError,)
"""Errors of building an EA2D model whose message is the whole story for a command-line user.

Besides these, a ``ValueError`` raised by this package's own code (its checks of init args, such as
``image_size`` not a multiple of 32) is one sentence naming the input and the fix, and is reported
plainly too; a ``ValueError`` from another library keeps its traceback.
"""


def _raised_here(error: BaseException) -> bool:
    """Whether ``error`` was raised by a module of this package (other than this one)."""
    frame = error.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    module = frame.tb_frame.f_globals.get("__name__", "") if frame is not None else ""
    return module.startswith("anomalib_ea2d.") and module != __name__


def _reported_plainly(error: Exception) -> bool:
    return isinstance(error, PLAIN_ERRORS) or (isinstance(error, ValueError) and _raised_here(error))


class PlainExit(SystemExit):
    """Ends the command with ``error: <message>`` on stderr and exit status 1, without a traceback.

    Example:
        >>> PlainExit("error: no weights").code
        'error: no weights'
    """


def build_reporting_plainly(class_type: type, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401 - any model
    """Build ``class_type(*args, **kwargs)``; an error of :data:`PLAIN_ERRORS` becomes :class:`PlainExit`.

    So does a ``ValueError`` raised by this package's own checks.

    Raises:
        PlainExit: If building raised one of :data:`PLAIN_ERRORS` or one of this package's
            ``ValueError``; its message is kept.

    Example:
        >>> build_reporting_plainly(dict, a=1)
        {'a': 1}
    """
    try:
        return class_type(*args, **kwargs)
    except Exception as error:
        if _reported_plainly(error):
            raise PlainExit(f"error: {error}") from error
        raise


def report_plainly(cli_class: type) -> None:
    """Make ``cli_class`` (anomalib's ``AnomalibCLI``) build EA2D models with :func:`build_reporting_plainly`.

    Wraps ``cli_class.instantiate_classes`` once: before the original runs, the instantiator is added
    to the parser and to the parser of the subcommand being run, for ``EA2D`` and its subclasses.

    Example:
        >>> class FakeCLI:
        ...     def instantiate_classes(self) -> None: ...
        >>> report_plainly(FakeCLI); report_plainly(FakeCLI)
        >>> FakeCLI.instantiate_classes.__wrapped__.__name__
        'instantiate_classes'
    """
    before_instantiate_classes(cli_class, "reports_plainly", _add_instantiator)


def _add_instantiator(cli: Any) -> None:  # noqa: ANN401 - the CLI
    """Add :func:`build_reporting_plainly` for ``EA2D`` to the CLI's parser and its subcommand's parser."""
    from anomalib_ea2d.models.image.ea2d.lightning_model import EA2D  # noqa: PLC0415 - imported by then, when EA2D is used

    parsers = [getattr(cli, "parser", None)]
    subcommand = getattr(cli, "subcommand", None)
    parsers.append(getattr(cli, "subcommand_parsers", {}).get(subcommand))
    for parser in parsers:
        if parser is not None and hasattr(parser, "add_instantiator"):
            parser.add_instantiator(build_reporting_plainly, EA2D, subclasses=True, prepend=True)


__all__ = ["PLAIN_ERRORS", "PlainExit", "build_reporting_plainly", "report_plainly"]
