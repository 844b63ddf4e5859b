"""``batchyard users|tokens|roles``: administer accounts on the server, or on its database.

With BATCHYARD_URL and BATCHYARD_TOKEN (an admin's), these commands go through the server's
HTTP API. ``--data-dir``/``--database-url`` work on the metadata database directly instead (the
operator on the server's machine, e.g. for a lost admin token); they never create one.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from batchyard.cli.accounts import Where, open_accounts
from batchyard.cli.connection import Token, Url
from batchyard.client import IssuedToken, Statement
from batchyard.domain.errors import InvalidRequest
from batchyard.domain.permissions import Action
from batchyard.domain.permissions import Statement as Rule

users_app = typer.Typer(
    rich_markup_mode=None,  # plain click help: flags as flags, not "--wait <bool>"
    help="Create, list, disable users and change their role (on the server at BATCHYARD_URL, "
    "or with --data-dir/--database-url on its database).",
    no_args_is_help=True,
)
tokens_app = typer.Typer(
    rich_markup_mode=None,  # plain click help: flags as flags, not "--wait <bool>"
    help="Issue, list and revoke API tokens (on the server at BATCHYARD_URL, or with "
    "--data-dir/--database-url on its database).",
    no_args_is_help=True,
)
roles_app = typer.Typer(
    rich_markup_mode=None,  # plain click help: flags as flags, not "--wait <bool>"
    help="Define, change, list and delete roles (statements of allowed actions), on the server "
    "at BATCHYARD_URL or with --data-dir/--database-url on its database.",
    no_args_is_help=True,
)

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Work directly on the server's data directory (it must exist) instead of "
        "through the API.",
    ),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="Work directly on this metadata database (the server's BATCHYARD_DATABASE_URL) "
        "instead of through the API; needs BATCHYARD_SECRET_KEY or --data-dir for the key.",
    ),
]
Expires = Annotated[
    str | None,
    typer.Option(
        "--expires", help="Token lifetime, e.g. 3600, 90m, 12h, 30d (default: never expires)."
    ),
]
_DURATION = re.compile(r"^(\d+)([smhd]?)$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """Seconds in ``text`` (``3600``, ``90m``, ``12h``, ``30d``)."""
    match = _DURATION.match(text.strip().lower())
    if not match or int(match.group(1)) == 0:
        raise typer.BadParameter(f"{text!r} is not a duration like 3600, 90m, 12h or 30d")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _when(ts: datetime | None) -> str:
    return "-" if ts is None else ts.strftime("%Y-%m-%d %H:%M:%SZ")


def _print_token(token: IssuedToken) -> None:
    typer.echo(f"token id: {token.token_id}   expires: {_when(token.expires_ts)}", err=True)
    typer.echo("The token is shown only now; store it safely:", err=True)
    typer.echo(token.token)


@users_app.command("create")
def create_user(
    name: Annotated[str, typer.Argument(help="User name (a-z, 0-9, _).")],
    role: Annotated[str, typer.Option(help="admin, member, viewer or a custom role.")] = "member",
    expires: Expires = None,
    url: Url = None,
    token: Token = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a user and print their first token (shown once, on stdout)."""
    seconds = parse_duration(expires) if expires else None
    with open_accounts(Where(url, token, data_dir, database_url)) as accounts:
        created = accounts.create_user(name, role, seconds)
    typer.echo(f"created user {name!r} with role {role!r}", err=True)
    _print_token(created.token)


@users_app.command("list")
def list_users(
    url: Url = None, token: Token = None, data_dir: DataDir = None, database_url: DatabaseUrl = None
) -> None:
    """Every user, their role and whether they are disabled."""
    with open_accounts(Where(url, token, data_dir, database_url)) as accounts:
        found = accounts.list_users()
    typer.echo(f"{'NAME':<24} {'ROLE':<16} {'STATE':<9} CREATED")
    for user in found:
        state = "disabled" if user.disabled else "active"
        typer.echo(f"{user.name:<24} {user.role:<16} {state:<9} {_when(user.created_ts)}")


@users_app.command("disable")
def disable_user(
    name: str,
    url: Url = None,
    token: Token = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Disable a user: every token of theirs stops working at once (not the last admin)."""
    with open_accounts(Where(url, token, data_dir, database_url)) as accounts:
        accounts.update_user(name, disabled=True)
    typer.echo(f"disabled user {name!r}")


@users_app.command("enable")
def enable_user(
    name: str,
    url: Url = None,
    token: Token = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Enable a disabled user again."""
    with open_accounts(Where(url, token, data_dir, database_url)) as accounts:
        accounts.update_user(name, disabled=False)
    typer.echo(f"enabled user {name!r}")


@users_app.command("set-role")
def set_user_role(
    name: str,
    role: Annotated[str, typer.Option(help="The role to give (built-in or custom).")],
    url: Url = None,
    token: Token = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Give a user another role: it applies from their next request on (not to demote the last
    admin)."""
    with open_accounts(Where(url, token, data_dir, database_url)) as accounts:
        accounts.update_user(name, role=role)
    typer.echo(f"user {name!r} now has role {role!r}")


@tokens_app.command("create")
def create_token(
    name: str,
    expires: Expires = None,
    url: Url = None,
    token: Token = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Issue another token for user NAME (shown once, on stdout)."""
    seconds = parse_duration(expires) if expires else None
    with open_accounts(Where(url, token, data_dir, database_url)) as accounts:
        issued = accounts.create_token(name, seconds)
    _print_token(issued)


@tokens_app.command("list")
def list_tokens(
    name: Annotated[str | None, typer.Argument(help="Only this user's tokens.")] = None,
    url: Url = None,
    token: Token = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Token ids with their owner and validity (never the tokens themselves)."""
    with open_accounts(Where(url, token, data_dir, database_url)) as accounts:
        found = accounts.list_tokens(name)
    typer.echo(f"{'TOKEN ID':<36}  {'USER':<16} {'EXPIRES':<21} REVOKED")
    for t in found:
        typer.echo(
            f"{t.token_id:<36}  {t.user:<16} {_when(t.expires_ts):<21} {_when(t.revoked_ts)}"
        )


@tokens_app.command("revoke")
def revoke_token(
    token_id: str,
    url: Url = None,
    token: Token = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Revoke a token by its id (see `tokens list`): it stops working at once."""
    with open_accounts(Where(url, token, data_dir, database_url)) as accounts:
        accounts.revoke_token(token_id)
    typer.echo(f"revoked token {token_id}")


def _statements(
    allow: list[str], datasets: list[str], operations: list[str], raw: list[str]
) -> list[Statement]:
    """The statements given on the command line, checked here for a precise usage error."""
    try:
        rules = [Rule.from_json(json.loads(text)) for text in raw]
    except (ValueError, TypeError, AttributeError) as error:
        raise typer.BadParameter(f"--statement must be a JSON object: {error}") from None
    except InvalidRequest as error:
        raise typer.BadParameter(error.message) from None
    if allow:
        try:
            rules.append(Rule.of(allow, datasets or None, operations or None))
        except InvalidRequest as error:
            raise typer.BadParameter(error.message) from None
    elif datasets or operations:
        raise typer.BadParameter("--dataset and --operation limit an --allow statement")
    if not rules:
        raise typer.BadParameter("give --allow ACTION (repeatable) or --statement JSON")
    return [Statement(**rule.to_json()) for rule in rules]


Allow = Annotated[
    list[str] | None,
    typer.Option(help=f"Allowed action or pattern, repeatable ({', '.join(Action)}, get_*)."),
]
Datasets = Annotated[
    list[str] | None,
    typer.Option(help="Limit the --allow statement to these datasets (patterns, repeatable)."),
]
Operations = Annotated[
    list[str] | None,
    typer.Option(
        "--operation",
        help="Limit the --allow statement's create_batch to these operations (insert, upsert, "
        "delete, a registered one; repeatable). Default: every operation.",
    ),
]
StatementJson = Annotated[
    list[str] | None,
    typer.Option(
        help='A whole statement as JSON: {"actions": [...], "datasets": [...], '
        '"operations": [...]}.'
    ),
]
SeesAllBatches = Annotated[
    bool, typer.Option(help="Let the role see every user's batches, not just its own.")
]


@roles_app.command("create")
def create_role(
    name: str,
    allow: Allow = None,
    dataset: Datasets = None,
    operation: Operations = None,
    statement: StatementJson = None,
    sees_all_batches: SeesAllBatches = False,
    url: Url = None,
    token: Token = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Define a custom role from statements of allowed actions.

    Example: a role that may only add rows to sales_* datasets:
    `batchyard roles create sales_loader --allow create_batch --allow get_batch
    --dataset 'sales_*' --operation insert`
    """
    parsed = _statements(allow or [], dataset or [], operation or [], statement or [])
    with open_accounts(Where(url, token, data_dir, database_url)) as accounts:
        accounts.save_role(name, parsed, sees_all_batches, replace=False)
    typer.echo(f"created role {name!r}")


@roles_app.command("update")
def update_role(
    name: str,
    allow: Allow = None,
    dataset: Datasets = None,
    operation: Operations = None,
    statement: StatementJson = None,
    sees_all_batches: SeesAllBatches = False,
    url: Url = None,
    token: Token = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Replace a custom role's statements (its users hold the new ones at once)."""
    parsed = _statements(allow or [], dataset or [], operation or [], statement or [])
    with open_accounts(Where(url, token, data_dir, database_url)) as accounts:
        accounts.save_role(name, parsed, sees_all_batches, replace=True)
    typer.echo(f"updated role {name!r}")


@roles_app.command("delete")
def delete_role(
    name: str,
    url: Url = None,
    token: Token = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Delete a custom role that no user holds."""
    with open_accounts(Where(url, token, data_dir, database_url)) as accounts:
        accounts.delete_role(name)
    typer.echo(f"deleted role {name!r}")


@roles_app.command("list")
def list_roles(
    url: Url = None, token: Token = None, data_dir: DataDir = None, database_url: DatabaseUrl = None
) -> None:
    """Built-in and custom roles with their statements."""
    with open_accounts(Where(url, token, data_dir, database_url)) as accounts:
        found = accounts.list_roles()
    for role in found:
        kind = "built-in" if role.builtin else "custom"
        scope = ", sees all batches" if role.sees_all_batches else ""
        typer.echo(f"{role.name} ({kind}{scope})")
        for s in role.statements:
            where = "all datasets" if s.datasets is None else ", ".join(s.datasets)
            running = "" if s.operations is None else f" (operations: {', '.join(s.operations)})"
            typer.echo(f"    allow {', '.join(s.actions)} on {where}{running}")
