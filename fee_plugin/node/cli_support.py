"""What every fee-node command shares: one-line errors and genesis loading."""
import click

from ..genesis import GenesisError, load_genesis


class CliError(click.ClickException):
    """One line on stderr, exit status 1."""

    def show(self, file=None) -> None:
        click.echo(f"error: {self.message}", err=True)


def genesis_or_fail(path: str):
    try:
        return load_genesis(path)
    except GenesisError as err:
        raise CliError(f"bad genesis: {err}") from None
