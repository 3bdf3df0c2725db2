"""The `aistack` command: plan, render, switch, verify, images and models locks, the sandbox."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .errors import InventoryError, UsageError
from .inventory import DEFAULT_INVENTORY, load_cluster
from .lanes import lanes_file, read_switched
from .model import Cluster, Gateway
from .models_lock import MODEL_LOCK
from .plan_view import as_dict, show
from .preflight import Level, preflight

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
out = Console()
err = Console(stderr=True)

InventoryOpt = Annotated[Path, typer.Option("--inventory", "-i", help="pyinfra inventory file")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="override a model field: dotted.path=value (repeatable)")]
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports Ctrl-C


@app.callback()
def _group() -> None:
    """Plan, render, deploy and verify a self-hosted LLM stack from one typed inventory."""


def load(inventory: Path, overrides: list[str] | None) -> Cluster:
    """Load and validate, or exit with every problem named (20) or a usage error (2)."""
    try:
        return load_cluster(inventory, overrides or [])
    except UsageError as exc:
        err.print(f"usage: {exc}", style="red", markup=False, soft_wrap=True)
        raise typer.Exit(EXIT_USAGE) from None
    except InventoryError as exc:
        err.print(f"[bold red]BLOCK[/] the inventory is not valid ({len(exc.problems)} problem(s)); nothing was touched:")
        for problem in exc.problems:
            err.print(f"  - {problem}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(Level.BLOCK.value) from None


@app.command()
def plan(
    inventory: InventoryOpt = DEFAULT_INVENTORY,
    set_: SetOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Check the inventory, what fits and the users each request type serves: exit 0 pass, 10 warn, 20 block."""
    cluster = load(inventory, set_)
    result = preflight(cluster)
    if as_json:
        sys.stdout.write(json.dumps(as_dict(cluster, result), indent=2) + "\n")
    else:
        show(out, cluster, result)
        record = lanes_file(cluster.name)
        switched = read_switched(record)
        if switched:
            out.print(f"lanes switched since the inventory's flags ({record.name}): {', '.join(switched)}", markup=False)
    raise typer.Exit(result.level.value)


@app.command()
def render(
    out_dir: Annotated[Path, typer.Option("--out", help="write OUT/<host>/<absolute path on that host>")],
    inventory: InventoryOpt = DEFAULT_INVENTORY,
    set_: SetOpt = None,
) -> None:
    """Write every file deploy would put on each host (secrets only as references)."""
    from .render import render_cluster, write_tree  # jinja2 and the templates: not on plan's path

    cluster = load(inventory, set_)
    written = write_tree(render_cluster(cluster), out_dir)
    hosts = sorted({p.relative_to(out_dir).parts[0] for p in written})
    out.print(f"wrote {len(written)} files for {len(hosts)} hosts ({', '.join(hosts)}) under {out_dir}")


@app.command()
def switch(
    lane: Annotated[str, typer.Argument(help="the generation lane to run on its GPU(s)")],
    inventory: InventoryOpt = DEFAULT_INVENTORY,
    set_: SetOpt = None,
) -> None:
    """Run LANE instead of the lane on its GPU: preflight (exit 0/10/20 as plan), switch, roll back on failure."""
    from .switch import plan_switch, run_switch

    load(inventory, set_)  # a bad inventory is named here, as in `plan`
    try:
        plan = plan_switch(inventory, lane, set_ or [])
    except UsageError as exc:
        err.print(f"usage: {exc}", style="red", markup=False, soft_wrap=True)
        raise typer.Exit(EXIT_USAGE) from None
    level = plan.preflight.level
    for finding in plan.preflight.findings:
        if finding.level is not Level.PASS:
            out.print(f"{finding.level.name} {finding.check} {finding.host or '-'}: {finding.subject}: {finding.message}",
                      markup=False, highlight=False, soft_wrap=True)
    if level is Level.BLOCK:
        err.print(f"switch to {lane} refused by the preflight; nothing was touched", style="bold red")
        raise typer.Exit(level.value)
    if not plan.needed:
        out.print(f"{lane} already runs on its GPU(s); nothing to do")
        raise typer.Exit(level.value)
    out.print(f"switching {plan.cluster.services[lane].host}: {', '.join(plan.stopping) or '(nothing running)'} -> {lane}"
              f" (recorded in {plan.record.name})")
    result = run_switch(plan, inventory, set_ or [])
    if result.switched:
        out.print(f"{lane} is running and healthy; the gateway routes to it")
        raise typer.Exit(level.value)
    if result.restored:
        err.print(f"{lane} did not come up healthy: switched back, {', '.join(plan.stopping) or 'the previous state'} "
                  "restored", style="bold red")
    else:
        err.print(f"{lane} did not come up healthy and the rollback failed too: fix the host, then run "
                  f"`pyinfra -y {inventory} deploy.py`", style="bold red")
    raise typer.Exit(1)


@app.command("load")
def load_ladder(
    inventory: InventoryOpt = DEFAULT_INVENTORY,
    set_: SetOpt = None,
    ladder: Annotated[str, typer.Option("--ladder", help="steps: 'smoke' and numbers of concurrent users")] = "smoke,16,32,64,128",
    total: Annotated[int | None, typer.Option("--total", help="requests per step (default: one per user)")] = None,
    mix: Annotated[str | None, typer.Option("--mix", help="request types of load.mix to send, optionally name=weight")] = None,
    duration: Annotated[float, typer.Option("--duration", help="seconds a step hands out requests (then stops)", min=1)] = 600,
    mode: Annotated[str, typer.Option("--mode", help="burst: one request after another; session: multi-turn conversations")] = "burst",
    turns: Annotated[int, typer.Option("--turns", help="turns of a session", min=1, max=64)] = 4,
    timeout: Annotated[float | None, typer.Option("--timeout", help="the client's deadline per call (default: the chain's longest + 30 s)")] = None,
    report: Annotated[Path | None, typer.Option("--report", help="report directory (default: reports/<cluster>-<time>)")] = None,
    acceptance: Annotated[str | None, typer.Option("--acceptance", help="run seed 001's acceptance set for this lane instead")] = None,
    webui_key: Annotated[str | None, typer.Option("--webui-key", envvar="AISTACK_WEBUI_KEY", show_envvar=True,
                                                  help="an Open WebUI API key, for the types that enter through it")] = None,
    no_evidence: Annotated[bool, typer.Option("--no-evidence", help="do not write inventory/<cluster>.load.yaml")] = False,
) -> None:
    """Send the load ladder through the cluster's front door: pass rate, latency and the failing layer per type."""
    from .sandbox.smoke import gateway_key

    cluster = load(inventory, set_)
    if mode not in ("burst", "session"):
        err.print(f"usage: --mode {mode!r}: burst or session", style="red", markup=False)
        raise typer.Exit(EXIT_USAGE)
    key = gateway_key(cluster)  # read over SSH from the gateway's host; never printed
    if acceptance is not None:
        raise typer.Exit(_acceptance(cluster, acceptance, key, timeout, report))
    from rich.live import Live

    from .load.run import run
    from .load.view import progress_line, summary_table

    with Live(console=err, auto_refresh=False, transient=False) as live:
        def progress(state) -> None:
            live.update(progress_line(state), refresh=True)

        try:
            result, written = run(cluster, ladder, total=total, mix=mix, duration_s=duration, report_dir=report,
                                  mode=mode, turns=turns, timeout_s=timeout, key=key, webui_key=webui_key,
                                  evidence=not no_evidence, progress=progress)
        except ValueError as exc:
            err.print(f"usage: {exc}", style="red", markup=False, soft_wrap=True)
            raise typer.Exit(EXIT_USAGE) from None
    err.print()  # the progress line ends here
    out.print(summary_table(result.summary))
    for name, why in result.summary["skipped"].items():
        out.print(f"not sent: {name}: {why}", markup=False, soft_wrap=True)
    for lane, gap in result.summary["prefix_cache"].items():
        out.print(f"prefix cache {lane}: {gap}", markup=False, soft_wrap=True)
    out.print(f"report: {result.directory}/report.html (results.jsonl, summary.json, plots)", markup=False,
              soft_wrap=True)
    if written:
        out.print(f"evidence: {written} (read by `aistack plan`)", markup=False, soft_wrap=True)
    if result.summary["interrupted"]:
        err.print("interrupted: the report holds the steps run so far; no evidence written", style="yellow")
        raise typer.Exit(EXIT_INTERRUPTED)


def _acceptance(cluster: Cluster, lane: str, key: str, timeout: float | None, report: Path | None) -> int:
    from .load.probes import acceptance
    from .load.run import default_report_dir, started_stamp
    from .load.traffic import by_address, gateway_url

    _, gateway_cfg = cluster.one(Gateway)
    alias = next((a for a, routes in gateway_cfg.aliases.items() if any(r.service == lane for r in routes)), None)
    if lane not in cluster.lanes() or alias is None:
        err.print(f"usage: --acceptance {lane!r}: not a generation lane behind a gateway alias "
                  f"(lanes: {', '.join(sorted(cluster.lanes()))})", style="red", markup=False)
        return EXIT_USAGE
    lanes = by_address(cluster, [r.service for r in gateway_cfg.aliases[alias]])
    found = acceptance(cluster, lane, alias, gateway_url(cluster), key, lanes, timeout or 300)
    directory = report or default_report_dir(cluster, started_stamp())
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"acceptance-{lane}.json").write_text(json.dumps(found, indent=2) + "\n")
    out.print_json(data=found)
    out.print(f"written: {directory}/acceptance-{lane}.json", markup=False)
    return 0


RESULT_STYLE = {"PASS": "green", "FAIL": "bold red", "ERROR": "bold red", "SKIP": "yellow"}


@app.command()
def verify(
    inventory: InventoryOpt = DEFAULT_INVENTORY,
    host: Annotated[list[str] | None, typer.Option("--host", help="only this host (repeatable)")] = None,
    set_: SetOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable rows")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="pytest's own output too")] = False,
) -> None:
    """Check the running hosts against the model (tests/live over the inventory's SSH): exit 0 or 1."""
    import pytest

    from .verify import report

    load(inventory, set_)  # a bad inventory is named here, as in `plan`
    code, rows = report.run(inventory, host or [], set_ or [], verbose=verbose)
    if code == pytest.ExitCode.USAGE_ERROR:
        raise typer.Exit(EXIT_USAGE)
    passed = code == 0 and bool(rows)
    if as_json:
        sys.stdout.write(json.dumps({"passed": passed, "rows": [asdict(row) for row in rows]}, indent=2) + "\n")
        raise typer.Exit(0 if passed else 1)
    table = Table("host", "check", "expected", "found", "result", title=f"aistack verify: {inventory.name}")
    for row in rows:
        table.add_row(*map(escape, (row.host, row.check, row.expected, row.found)),
                      f"[{RESULT_STYLE[row.result]}]{row.result}[/]")
    out.print(table)
    counts = {r: sum(row.result == r for row in rows) for r in RESULT_STYLE}
    out.print(", ".join(f"{n} {r.lower()}" for r, n in counts.items() if n) or "nothing checked")
    raise typer.Exit(0 if passed else 1)


images_app = typer.Typer(no_args_is_help=True, help="The image lock (locks/images.yaml).")
app.add_typer(images_app, name="images")


@images_app.command("lock")
def images_lock(
    only: Annotated[list[str] | None, typer.Argument(help="image keys to resolve (default: all)")] = None,
) -> None:
    """Resolve tags to digests with the local Docker engine and rewrite the lock; never guess."""
    from .images import lock_images

    results = lock_images(only=only)
    failed = [r for r in results if r.error]
    for r in results:
        status = f"[green]{r.digest}[/]" if not r.error else f"[yellow]unresolved[/] ({r.error}); lock keeps {r.digest}"
        out.print(f"{r.key:24} {r.ref}  {status}", soft_wrap=True)
    raise typer.Exit(1 if failed else 0)


models_app = typer.Typer(no_args_is_help=True, help="The model lock (locks/models.yaml).")
app.add_typer(models_app, name="models")


@models_app.command("lock")
def models_lock(
    inventory: InventoryOpt = DEFAULT_INVENTORY,
    local: Annotated[list[str] | None, typer.Option("--file", help="REPO=PATH: lock a local file by its real sha256")] = None,
    lock_path: Annotated[Path, typer.Option("--lock", help="the model lock to update (deploy: --data aistack_model_lock=PATH)")]
    = MODEL_LOCK,
) -> None:
    """Fill size and sha256 of every model file the inventory uses, from the hub (or local files)."""
    from .models_lock import load_model_lock, lock_files, write_model_lock

    if not lock_path.parent.is_dir():
        err.print(f"usage: --lock {lock_path}: its directory does not exist", markup=False)
        raise typer.Exit(EXIT_USAGE)
    lock = load_model_lock(lock_path)
    results = lock_files(load(inventory, None), lock, [_repo_file(item) for item in local or []])
    write_model_lock(lock, lock_path)
    for key, error in results:
        status = "[green]locked[/]" if error is None else f"[yellow]not locked[/] ({error})"
        out.print(f"{key}  {status}", soft_wrap=True)
    raise typer.Exit(1 if any(error for _, error in results) else 0)


def _repo_file(item: str) -> tuple[str, Path]:
    repo, sep, path = item.partition("=")
    if not sep or not Path(path).is_file():
        err.print(f"usage: --file {item!r}: expected REPO=PATH to an existing file")
        raise typer.Exit(EXIT_USAGE)
    return repo, Path(path)


sandbox_app = typer.Typer(no_args_is_help=True, help="The local sandbox cluster (inventory/sandbox.py).")
app.add_typer(sandbox_app, name="sandbox")


@sandbox_app.command("up")
def sandbox_up(only: Annotated[list[str] | None, typer.Argument(help="hosts (default: all four)")] = None) -> None:
    """Build (cached) and start the four test hosts; reachable over SSH on 127.0.0.1."""
    from rich.logging import RichHandler

    from .sandbox import testhosts

    # Image builds and loads take minutes on a fresh machine: say what runs and how far it is.
    # Rich's columns on a terminal; plain timestamped lines in a log (CI, `make ... | tee`).
    handler = RichHandler(console=err, show_path=False, show_level=False) if err.is_terminal else logging.StreamHandler()
    logging.basicConfig(level=logging.INFO, handlers=[handler],
                        format="%(message)s" if err.is_terminal else "%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("docker").setLevel(logging.WARNING)

    for host in testhosts.up(only):
        out.print(f"{host.name:5} ssh root@127.0.0.1 -p {host.ssh_port}  address {host.address}")


@sandbox_app.command("down")
def sandbox_down() -> None:
    """Remove every container, volume and network the sandbox made."""
    from .sandbox import testhosts

    removed = testhosts.down()
    out.print(f"removed {len(removed)} test host(s)" + (f": {', '.join(removed)}" if removed else ""))


@sandbox_app.command("status")
def sandbox_status() -> None:
    """Each test host: running or not, its address and SSH port."""
    from .sandbox import testhosts

    table = Table("host", "state", "address", "ssh")
    for s in testhosts.status():
        table.add_row(s.name, s.state, s.address, s.ssh)
    out.print(table)
    raise typer.Exit(0 if all(s.state == "running" for s in testhosts.status()) else 1)


SANDBOX_INVENTORY = DEFAULT_INVENTORY.parent / "sandbox.py"


@sandbox_app.command("smoke")
def sandbox_smoke(
    inventory: InventoryOpt = SANDBOX_INVENTORY,
    requests: Annotated[int, typer.Option(help="vision-alias requests in the burst")] = 45,
) -> None:
    """A real chat completion, embedding and rerank through nginx -> LiteLLM -> llama.cpp, then a
    vision-alias burst."""
    from .sandbox import smoke

    cluster = load(inventory, None)
    key = smoke.gateway_key(cluster)
    response = smoke.chat(cluster, key)
    if response.status_code != 200:
        err.print(f"chat through {smoke.front_url(cluster)}: HTTP {response.status_code}: {response.text[:300]}", markup=False)
        raise typer.Exit(1)
    body = response.json()
    out.print(f"chat via {smoke.front_url(cluster)}: 200, model {body['model']}, "
              f"{body['usage']['completion_tokens']} token(s) from {body.get('system_fingerprint', '?')}")
    for name, answer in (("embed", smoke.embed(cluster, key, ["a test sentence"])),
                         ("rerank", smoke.rerank(cluster, key, "a query", ["one document", "another"]))):
        if answer.status_code != 200:
            err.print(f"{name} through {smoke.front_url(cluster)}: HTTP {answer.status_code}: {answer.text[:300]}",
                      markup=False)
            raise typer.Exit(1)
        out.print(f"{name} via {smoke.front_url(cluster)}: 200")
    split = smoke.burst(cluster, key, requests=requests)
    shares = ", ".join(f"{lane} {n} (weight {split.weights[lane]})" for lane, n in split.served.items())
    out.print(f"vision burst: {split.ok}/{split.sent} answered; served by {shares}")
    raise typer.Exit(0 if split.ok == split.sent and sum(split.served.values()) == split.sent else 1)
