"""Cases (办件): intake at the window, review in the back office, results at one window.

A case is opened at the window from the ticket being served (or an online pre-application,
:mod:`node.preapplications`).  Its number (办件编码) is
``<node division code>-<local date>-<daily sequence>``, e.g. ``370102001-20261129-0007``:
unique across the province without any coordination.

Intake compares the materials received with the catalog's checklist and accepts the case at
once, accepts it with missing materials (容缺受理) or lets it wait for materials; whenever
something is missing a one-time notice (一次性告知) lists *every* missing material.
Acceptance opens one review task per department of the case's items; the tasks run in
parallel.  The case is approved when every task approves, rejected when one rejects; a
request for supplementary materials (补正) pauses the deadline clock until the citizen brings
them to the window, and the deadlines move by the working days paused.  Results are handed
out at one window (统一出件): picked up or mailed.

Every change is written with an event in the same transaction; event bodies hold masks and
keyed hashes only.

The modules, each importing only those above it:

* :mod:`~node.cases.common` -- states, SMS texts, request fields, a case and its materials;
* :mod:`~node.cases.items` -- the catalog items of a case: checklist and departments;
* :mod:`~node.cases.visits` -- the ticket served at the window and the visits of a case;
* :mod:`~node.cases.notices` -- the one-time notice;
* :mod:`~node.cases.acceptance` -- 受理 and 容缺 rules, opening the review tasks;
* :mod:`~node.cases.intake` -- opening a case, supplements, the logged identity look-up;
* :mod:`~node.cases.files` -- scans of the materials;
* :mod:`~node.cases.review` -- the departments' decisions;
* :mod:`~node.cases.results` -- deadlines, the result and its handover;
* :mod:`~node.cases.queries` -- detail, list, inbox, overview and the citizen's status;
* :mod:`node.cases_db` (tables, beside the package so the node database can list them), :mod:`~node.cases.api` (JSON handlers),
  :mod:`~node.cases.views` (staff pages) and :mod:`~node.cases.routes`.
"""
