"""Packaged configs (`adapinn/presets/NAME.yaml`), each with a `presets:` section (`quick`,
`paper`, ...) that overrides its base."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from adapinn.experiments.config import RunConfig, build_config, load_yaml

DEFAULT_PRESET = "quick"


GENERIC_FILE = "_generic.yaml"
"""Presets that apply to any problem (`robust`), in `adapinn/presets/_generic.yaml`."""


def _packaged() -> dict[str, Path]:
    folder = resources.files("adapinn") / "presets"
    return {Path(f.name).stem: Path(str(f)) for f in folder.iterdir()
            if f.name.endswith(".yaml") and not f.name.startswith("_")}


def generic_presets() -> dict[str, dict]:
    """{name: overrides} of the presets every config offers (its own preset of the same name
    wins)."""
    path = Path(str(resources.files("adapinn") / "presets" / GENERIC_FILE))
    return load_yaml(path).get("presets") or {}


def preset_names() -> list[str]:
    """'config:preset' for every packaged config."""
    names = []
    for name, path in sorted(_packaged().items()):
        names += [f"{name}:{p}" for p in (load_yaml(path).get("presets") or {})]
    return names + [f"PROBLEM:{p}" for p in generic_presets()]


def resolve(
    name_or_file: str,
    preset: str | None = None,
    overrides: list[str] = (),
    seed: int | None = None,
) -> RunConfig:
    """Config from a packaged name ('burgers') or a YAML file, with preset and overrides; a
    name that is neither is a problem (registered or FILE.py:FACTORY) with the defaults.

    Without `preset`, a config that offers presets uses `quick`. The generic presets
    (`generic_presets`, e.g. `robust`) apply to every config that has none of that name.
    """
    packaged = _packaged()
    path = Path(name_or_file)
    if path.suffix in {".yaml", ".yml"} or path.is_file():
        data = load_yaml(path)
    elif name_or_file in packaged:
        data = load_yaml(packaged[name_or_file])
    else:  # a problem without a packaged config (the registry checks the name, listing
        data = {"problem": {"name": name_or_file}}  # the valid ones, before a run is built)
    if preset is None and DEFAULT_PRESET in (data.get("presets") or {}):
        preset = DEFAULT_PRESET
    generic = generic_presets()
    if preset in generic and preset not in (data.get("presets") or {}):
        data = {**data, "presets": {**(data.get("presets") or {}), preset: generic[preset]}}
    return build_config(data, preset, list(overrides), seed)
