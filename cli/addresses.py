"""``skyctl addresses repair``: make the address ledger say what the services say."""

from typing import TYPE_CHECKING

import typer

from cli.connection import Connection, connection_options
from cli.lifetime import run_command
from cli.options import DryRunOpt
from cli.terminal import safe

if TYPE_CHECKING:
    from registry.addresses.ledger import BadRecord, Repaired

__all__ = ["addresses_app"]

addresses_app = typer.Typer(help="Check and repair the address ledger.", no_args_is_help=True)


@connection_options
def repair(dry_run: DryRunOpt = False, *, conn: Connection) -> None:
    """List the address records the services do not back (unreadable, naming a service
    that is gone or does not name the address, releasing what a live service holds), and
    write over each, on its own sequence, the record that says what the services say: a
    release, or the live holder again. Such records already grant and block nothing; the
    repair makes the ledger plain to every reader. For admins (a writer may run it too:
    it can only free what no live service holds).

    Example:  skyctl addresses repair --dry-run
    """

    async def run() -> "tuple[list[BadRecord], list[Repaired]]":
        from registry.addresses.ledger import bad_records
        from registry.addresses.ledger import repair as repair_one

        async with await conn.open(writes=True) as registry:
            bad = await bad_records(registry.log, registry.allocator)
            if dry_run or not bad:
                return bad, []
            actor = await registry.actor()
            return bad, [await repair_one(registry.log, b, actor) for b in bad]

    bad, done = run_command(run())
    if not bad:
        print("the address ledger is clean: every record agrees with the services")
        return
    if dry_run:
        for record in bad:
            fix = f"record as held by {record.holder}" if record.holder else "release"
            print(safe(f"{record}: would {fix} (dry run)"))
        print(f"{len(bad)} record{'s' if len(bad) != 1 else ''} to repair (dry run)")
        return
    for repaired in done:
        print(safe(str(repaired)))
    written = sum(1 for r in done if r.action != "moved on")
    print(f"{written} record{'s' if written != 1 else ''} repaired")


addresses_app.command("repair", short_help="Rewrite the address records no service backs.")(repair)
