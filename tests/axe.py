"""axe-core in a Playwright page: what a page's accessibility check finds.

axe-core is the npm package pinned in ``package.json`` (installed by ``make node_modules``,
which ``make test`` runs first); its script is injected into the page under test only, never
served by a node or the hub.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
#: The impacts that fail a page.
BLOCKING = ("critical", "serious")

_RUN = """async () => {
  const r = await axe.run(document, {resultTypes: ["violations"]});
  return r.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 4).map(n => n.target.join(" ") + " :: " +
      (n.failureSummary || "").replace(/\\s+/g, " ").slice(0, 240)),
  }));
}"""


def violations(page: Any, impacts: tuple[str, ...] = BLOCKING) -> list[dict[str, Any]]:
    """axe-core's violations on ``page`` as it is now, those of ``impacts`` only."""
    if not AXE.exists():
        raise AssertionError(f"{AXE.relative_to(ROOT)} is missing: run `make node_modules`")
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = page.evaluate(_RUN)
    return [v for v in found if v["impact"] in impacts]


def landmarks(page: Any) -> dict[str, int]:
    """How many ``main`` landmarks and ``h1`` headings the page shows (one of each is right);
    a screen hidden with ``display: none`` (the kiosk's later steps) is not in the
    accessibility tree, so it does not count."""
    counts: dict[str, int] = page.evaluate(
        "() => { const shown = s => [...document.querySelectorAll(s)]"
        ".filter(e => e.getClientRects().length > 0).length;"
        " return {main: shown('main, [role=main]'), h1: shown('h1')}; }"
    )
    return counts


def report(url: str, found: list[dict[str, Any]]) -> str:
    lines = [f"{url}:"]
    for v in found:
        lines.append(f"  [{v['impact']}] {v['id']}: {v['help']}")
        lines += [f"      {n}" for n in v["nodes"]]
    return "\n".join(lines)
