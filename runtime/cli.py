"""`actsac-run`: placeholder until its issue lands."""

from actsac._cli import not_implemented


def main(argv=None) -> None:
    not_implemented("actsac-run")
