"""``agesearch spaces``: list the shipped search spaces, or check and describe a space file."""

from __future__ import annotations

import argparse

NAME = "spaces"
HELP = "list shipped search spaces, or validate and describe one"
EPILOG = """examples:
  agesearch spaces
  agesearch spaces quick
  agesearch spaces my_space.yaml
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("space", nargs="?", help="a YAML path or shipped name to validate and describe")


def run(args: argparse.Namespace) -> int:
    from agesearch.search.space import load_space, resolve_space_path, shipped_spaces

    if args.space:
        print(load_space(resolve_space_path(args.space)).describe())
        print("valid")
        return 0
    for path in shipped_spaces():
        from agesearch.search.space import SearchSpace

        sp = SearchSpace.from_yaml(path)
        print(f"{path.stem:12s} {sp.description}  ({path})")
    return 0
