"""Which competitions there are, and loading one by name.

`load_competition("covid")` imports `competitions.covid` and takes its `competition` attribute;
a dotted name (`mypackage.mycomp`) imports a plug-in that lives outside this repository; a path
to a competition.yaml (or a folder holding one, or competitions/<name>/competition.yaml) gives
a CSV competition (pipeline.tabular.competition).
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from pipeline.competition.base import Competition
from pipeline.errors import UserError


def list_competitions() -> list[str]:
    import competitions

    folder = Path(competitions.__path__[0])
    plugins = {m.name for m in pkgutil.iter_modules(competitions.__path__) if m.ispkg}
    files = {p.parent.name for p in folder.glob("*/competition.yaml")}
    return sorted(plugins | files)


def load_competition(name: str) -> Competition:
    """A plug-in by name (competitions/<name>/) or dotted module path, or a CSV competition
    from a competition.yaml file, a folder holding one, or competitions/<name>/competition.yaml."""
    from pipeline.tabular.spec import load_spec, spec_path

    path = spec_path(name)
    if path is not None:
        from pipeline.tabular.competition import CsvCompetition

        return CsvCompetition(load_spec(path), command=name)
    module_name = name if "." in name else f"competitions.{name}"
    dotted = "." in name and all(part.isidentifier() for part in name.split("."))
    if not dotted and name not in list_competitions():
        raise UserError(
            f"Unknown competition {name!r}; available: {', '.join(list_competitions())} "
            "(or a dotted module path to your own plug-in)."
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise UserError(f"Cannot import competition module {module_name!r}.") from None
        raise
    competition = getattr(module, "competition", None)
    if not isinstance(competition, Competition):
        raise UserError(f"{module_name} has no `competition` object (a Competition instance).")
    return competition
