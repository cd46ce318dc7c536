"""The `flask api-keys` command group: create, list and revoke API keys."""
import click
from flask.cli import AppGroup

from services.auth import ROLES, ApiKeyService
from services.database import database_connection
from services.errors import ServiceError

api_keys_cli = AppGroup("api-keys", help="Create, list and revoke API keys.")


def _cli_call(fn, *args):
    try:
        with database_connection():
            return fn(*args)
    except ServiceError as exc:
        details = "; ".join(f"{k}: {' '.join(v)}" for k, v in (exc.errors or {}).items())
        raise click.ClickException(exc.message + (f" ({details})" if details else "")) from None


@api_keys_cli.command("create")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--name", required=True, help="A unique label, e.g. ops or agent-7-desk.")
@click.option("--agent-id", default=None, help="For agent keys: the agent whose calls it sees.")
def create_key_command(role, name, agent_id):
    """Create a key and print it once (stdout); only its hash is stored."""
    api_key, plaintext = _cli_call(ApiKeyService().create, role, name, agent_id)
    click.echo(plaintext)
    click.echo(f"created {api_key.role} key {api_key.name!r} (id {api_key.id}). It is shown "
               "only this once: store it now.", err=True)


@api_keys_cli.command("list")
def list_keys_command():
    """List keys (name, role, agent, prefix, state); never the keys themselves."""
    keys = _cli_call(ApiKeyService().list)
    click.echo(f"{'ID':36}  {'NAME':20} {'ROLE':10} {'AGENT':12} {'PREFIX':12} STATE")
    for key in keys:
        state = "active" if key.active else f"revoked {key.revoked_at:%Y-%m-%d %H:%M}"
        click.echo(f"{key.id:36}  {key.name:20} {key.role:10} {key.agent_id or '-':12} "
                   f"{key.prefix + '...':12} {state}")


@api_keys_cli.command("revoke")
@click.argument("name_or_id")
def revoke_key_command(name_or_id):
    """Revoke a key (by name or id): it and its tokens stop working at once."""
    api_key = _cli_call(ApiKeyService().revoke, name_or_id)
    click.echo(f"revoked key {api_key.name!r} (id {api_key.id})")
