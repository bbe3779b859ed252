"""Automatic rollback: the night undoes a promotion that labels show to be worse, or that serving
could not load.

After a promotion the night watches the new champion. Two rules roll it back to `previous`:

- performance: the champion's labelled accuracy (its non-shadow predictions as champion,
  served or scored in a nightly batch, that have a label in `feedback`) is below the figure
  the previous champion held (its labelled accuracy over its last `rollback_baseline_days`
  days of labelled predictions; its held-out accuracy from its card when it has fewer than
  `rollback_min_labels` of them) by more than `rollback_margin`, on at least
  `rollback_min_labels` labels, and the drop is significant: Fisher's exact test, one-sided
  (the champion's odds of a right answer are lower), on the 2x2 table of right and wrong
  answers of the two champions, p < `rollback_alpha`; against a held-out figure, which has no
  counts here, the exact binomial test, one-sided, of the champion's counts against it. No
  rollback on performance until `rollback_cooldown_days` have passed since the champion's
  last switch, and none of a champion that a rollback restored (the figure it would be
  compared with is the one of the version it replaced for being worse), nor after
  `rollback_watch_days` (a champion that served well for weeks and then drops meets drift,
  which the retraining policy answers; going back to an older model would not);
- refused artifact: serving refused the champion's artifact (an open `artifact_refused`
  alert for it as champion, raised since its last switch). It rolls back whatever the
  cool-down, when the previous champion's own artifact verifies.

`evaluate_rollback` is a pure function of the evidence and the policy; `gather_evidence`
reads the warehouse; `watch_champion` is the night's step: it decides, rolls back through
the registry's `rollback` (the code path of `overnight rollback`: one alias transaction, then
the serving manifest is published, which the workers follow), records one `rollback_checks`
row with the evidence and raises one alert. A re-run of a night that rolled back returns its
recorded decision and does nothing more.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

import duckdb
from scipy.stats import binomtest, fisher_exact

from models.registry.versions import get_alias, get_version, rollback, verify_artifact
from monitoring.alerts import raise_alert
from monitoring.policy import RetrainingPolicy, policy_for
from warehouse import connect, transaction
from warehouse.errors import OvernightError

ALERT_KIND = "rollback"
REFUSED_KIND = "artifact_refused"          # raised by serving (models/serving/app.py)
ROLLBACK_REASON_PREFIX = "rollback:"       # what models.registry.versions.rollback writes
FISHER = "Fisher's exact test, one-sided (champion less accurate)"
BINOMIAL = "exact binomial test, one-sided (champion below the held-out figure)"


@dataclass(frozen=True)
class Counts:
    """Labelled predictions of one model version: how many, and how many were right."""

    n_labelled: int
    n_correct: int

    def __post_init__(self) -> None:
        if not 0 <= self.n_correct <= self.n_labelled:
            raise ValueError(f"counts of {self.n_correct} right answers out of "
                             f"{self.n_labelled} labelled cannot be")

    @property
    def accuracy(self) -> float | None:
        return self.n_correct / self.n_labelled if self.n_labelled else None


@dataclass(frozen=True)
class RollbackEvidence:
    """What the rollback rules look at for one dataset and night."""

    dataset: str
    night_date: date
    champion_version: str | None
    previous_version: str | None = None
    champion: Counts = Counts(0, 0)
    previous: Counts = Counts(0, 0)            # over its last `rollback_baseline_days` days
    previous_held_out: float | None = None     # its card's held-out accuracy
    switched_on: date | None = None            # the night of the champion's last switch
    restored_by_rollback: bool = False         # its last switch was a rollback
    refused: str | None = None                 # serving's refusal of the champion's artifact
    previous_unusable: str | None = None       # why the previous artifact fails verification


@dataclass(frozen=True)
class RollbackDecision:
    """The verdict with its evidence: what the `rollback_checks` row and the alert hold."""

    dataset: str
    night_date: date
    champion_version: str | None
    previous_version: str | None
    rollback: bool
    rule: str | None                 # 'performance' or 'artifact_refused' when one fired
    reason: str
    n_labelled: int = 0
    n_correct: int = 0
    accuracy: float | None = None
    previous_n_labelled: int | None = None
    previous_n_correct: int | None = None
    previous_accuracy: float | None = None
    baseline_source: str | None = None      # 'labelled' or 'held-out'
    accuracy_drop: float | None = None
    margin: float | None = None
    min_labels: int | None = None
    alpha: float | None = None
    p_value: float | None = None
    test: str | None = None
    refused: str | None = None
    cooldown_held: bool = False
    switched_on: date | None = None
    needs_person: bool = False       # a rule fired but the previous artifact is unusable
    restored_version: str | None = None
    switch_id: int | None = None
    alert_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class RollbackError(OvernightError):
    """Evidence that cannot be right."""


# ------------------------------------------------------------------------ the decision


def drop_test(champion: Counts, previous: Counts | None, held_out: float | None
              ) -> tuple[float, str]:
    """The one-sided p-value that the champion is less accurate than the previous figure.

    With the previous champion's counts: Fisher's exact test on [[right, wrong] of the
    champion, [right, wrong] of the previous], alternative 'less' (odds ratio below 1).
    With only a held-out accuracy (no counts): the exact binomial test of the champion's
    right answers against it, alternative 'less'.
    """
    if champion.n_labelled == 0:
        raise RollbackError("no labelled predictions of the champion to test")
    if previous is not None and previous.n_labelled:
        table = [[champion.n_correct, champion.n_labelled - champion.n_correct],
                 [previous.n_correct, previous.n_labelled - previous.n_correct]]
        return float(fisher_exact(table, alternative="less").pvalue), FISHER
    if held_out is None or not 0 <= held_out <= 1:
        raise RollbackError(f"no figure of the previous champion to test against ({held_out})")
    return float(binomtest(champion.n_correct, champion.n_labelled, held_out,
                           alternative="less").pvalue), BINOMIAL


def _days(n: int) -> str:
    return f"{n} day" if n == 1 else f"{n} days"


def _performance(ev: RollbackEvidence, policy: RetrainingPolicy, base: RollbackDecision
                 ) -> RollbackDecision:
    """The performance rule's verdict (before the cool-down and the previous artifact)."""
    n, accuracy = ev.champion.n_labelled, ev.champion.accuracy
    base = replace(base, n_labelled=n, n_correct=ev.champion.n_correct, accuracy=accuracy)
    if n < policy.rollback_min_labels:
        return replace(base, reason=f"No rollback: the performance rule abstains, {n} labelled "
                       f"predictions of {ev.champion_version} (< {policy.rollback_min_labels})")
    if ev.previous.n_labelled >= policy.rollback_min_labels:
        source, figure, counts = "labelled", ev.previous.accuracy, ev.previous
    elif ev.previous_held_out is not None:
        source, figure, counts = "held-out", ev.previous_held_out, None
    else:
        return replace(base, reason=f"No rollback: the performance rule abstains, "
                       f"{ev.previous_version} has {ev.previous.n_labelled} labelled predictions"
                       f" (< {policy.rollback_min_labels}) and no held-out accuracy")
    assert figure is not None and accuracy is not None
    p_value, test = drop_test(ev.champion, counts, figure)
    drop = round(figure - accuracy, 6)
    base = replace(base, baseline_source=source, previous_accuracy=figure,
                   previous_n_labelled=counts.n_labelled if counts else None,
                   previous_n_correct=counts.n_correct if counts else None,
                   accuracy_drop=drop, p_value=p_value, test=test)
    held = f"on {counts.n_labelled} labels" if counts else "held-out"
    figures = (f"accuracy {accuracy:.3f} on {n} labels against {figure:.3f} of "
               f"{ev.previous_version} ({held}), drop {drop:+.3f}, margin "
               f"{policy.rollback_margin:g}, p = {p_value:.3g} (alpha {policy.rollback_alpha:g})")
    if drop <= policy.rollback_margin:
        return replace(base, reason=f"No rollback: {figures}; the drop is within the margin")
    if p_value >= policy.rollback_alpha:
        return replace(base, reason=f"No rollback: {figures}; the drop is not significant")
    return replace(base, rollback=True, rule="performance",
                   reason=f"{ev.champion_version} is worse than {ev.previous_version}: {figures}")


def _cooldown(ev: RollbackEvidence, policy: RetrainingPolicy) -> str | None:
    """The cool-down in force tonight, described, or None."""
    if ev.switched_on is None:
        return None
    days = (ev.night_date - ev.switched_on).days
    if days >= policy.rollback_cooldown_days:
        return None
    return (f"the champion switched on {ev.switched_on.isoformat()}, {_days(max(days, 0))} ago"
            f" (cool-down {_days(policy.rollback_cooldown_days)})")


def evaluate_rollback(ev: RollbackEvidence, policy: RetrainingPolicy) -> RollbackDecision:
    """Whether to roll the champion back tonight, and why (pure: no I/O)."""
    base = RollbackDecision(
        ev.dataset, ev.night_date, ev.champion_version, ev.previous_version, False, None, "",
        margin=policy.rollback_margin, min_labels=policy.rollback_min_labels,
        alpha=policy.rollback_alpha, refused=ev.refused, switched_on=ev.switched_on)
    if ev.champion_version is None:
        return replace(base, reason="No rollback: no champion")
    if ev.previous_version is None:
        why = " although serving refused its artifact" if ev.refused else ""
        return replace(base, needs_person=bool(ev.refused),
                       reason=f"No rollback{why}: {ev.dataset} has no previous champion")
    if ev.refused:
        decision = replace(base, rollback=True, rule=REFUSED_KIND,
                           reason=f"serving refused the artifact of {ev.champion_version}: "
                                  f"{ev.refused}")
    elif ev.restored_by_rollback:
        return replace(base, reason=f"No rollback: {ev.champion_version} was restored by a "
                       "rollback; the performance rule watches promoted champions")
    elif ev.switched_on is not None and (
            ev.night_date - ev.switched_on).days > policy.rollback_watch_days:
        return replace(base, reason=f"No rollback: {ev.champion_version} has been champion since "
                       f"{ev.switched_on.isoformat()}, beyond the {policy.rollback_watch_days}-day"
                       " watch; a drop now is for the retraining policy")
    else:
        decision = _performance(ev, policy, base)
        if not decision.rollback:
            return decision
        cooldown = _cooldown(ev, policy)
        if cooldown:
            return replace(decision, rollback=False, cooldown_held=True,
                           reason=f"No rollback although {decision.reason}: the cool-down "
                                  f"holds, {cooldown}")
    if ev.previous_unusable:
        return replace(decision, rollback=False, needs_person=True,
                       reason=f"No rollback although {decision.reason}: the artifact of "
                              f"{ev.previous_version} fails verification too "
                              f"({ev.previous_unusable}); a person must act")
    return replace(decision, reason=f"Rollback to {ev.previous_version}: {decision.reason}")


# ------------------------------------------------------------------------ the evidence

# predictions a version made as champion: served (not shadow, not as canary challenger) or
# scored in a nightly batch (alias NULL)
_LABELLED = (
    "SELECT CAST(p.predicted_at AS DATE) AS day, p.predicted_class = f.label AS correct"
    " FROM predictions p JOIN feedback f USING (prediction_id)"
    " WHERE p.dataset = $d AND p.model_version = $v AND p.role <> 'shadow'"
    " AND coalesce(p.alias, 'champion') = 'champion' AND CAST(p.predicted_at AS DATE) <= $n")


def labelled_counts(con: duckdb.DuckDBPyConnection, dataset: str, version: str, night: date,
                    last_days: int | None = None) -> Counts:
    """A version's labelled predictions as champion up to the night (over its last
    `last_days` days of labelled predictions when given)."""
    row = con.execute(
        f"WITH l AS ({_LABELLED}) SELECT count(*), coalesce(sum(CAST(correct AS INTEGER)), 0)"
        " FROM l WHERE $k::INTEGER IS NULL"
        " OR day > (SELECT max(day) FROM l) - $k::INTEGER",
        {"d": dataset, "v": version, "n": night, "k": last_days}).fetchone()
    return Counts(int(row[0]), int(row[1])) if row else Counts(0, 0)


def _refusal(con: duckdb.DuckDBPyConnection, dataset: str, version: str,
             since: datetime | None) -> str | None:
    row = con.execute(
        "SELECT message FROM alerts WHERE kind = $k AND dataset = $d AND status = 'open'"
        " AND json_extract_string(details, '$.model_version') = $v"
        " AND coalesce(json_extract_string(details, '$.alias'), 'champion') = 'champion'"
        " AND ($s::TIMESTAMP IS NULL OR created_at >= $s::TIMESTAMP)"
        " ORDER BY created_at DESC LIMIT 1",
        {"k": REFUSED_KIND, "d": dataset, "v": version, "s": since}).fetchone()
    return str(row[0]) if row else None


def _last_switch(con: duckdb.DuckDBPyConnection, dataset: str
                 ) -> tuple[int, str, datetime] | None:
    """The champion's last switch in alias_history: (change id, reason, when)."""
    row = con.execute(
        "SELECT change_id, coalesce(reason, ''), changed_at FROM alias_history"
        " WHERE dataset = ? AND alias = 'champion' ORDER BY change_id DESC LIMIT 1",
        [dataset]).fetchone()
    return (int(row[0]), str(row[1]), row[2]) if row else None


def _switched_on(con: duckdb.DuckDBPyConnection, dataset: str, night: date, switch_id: int,
                 changed_at: datetime) -> date:
    """The night of a switch: its date, or, for a switch dated after the night (a backfill
    replaying past nights), the first night whose check saw it."""
    row = con.execute("SELECT min(night_date) FROM rollback_checks WHERE dataset = ?"
                      " AND switch_id = ? AND night_date <= ?",
                      [dataset, switch_id, night]).fetchone()
    seen = row[0] if row and row[0] else night
    return min(changed_at.date(), seen)


def _unusable(version: str | None) -> str | None:
    """Why a version's artifact cannot be served (None when it verifies)."""
    if version is None:
        return None
    try:
        verify_artifact(get_version(version))
    except OvernightError as error:
        return str(error)
    return None


def gather_evidence(dataset: str, night: date, policy: RetrainingPolicy) -> RollbackEvidence:
    """Read what the rollback rules need for one night from the warehouse (read-only); the
    previous artifact is verified only when a rule fires (`watch_champion`)."""
    with connect(read_only=True) as con:
        champion = get_alias(dataset, "champion", con)
        previous = get_alias(dataset, "previous", con)
        if champion is None:
            return RollbackEvidence(dataset, night, None, previous)
        switch = _last_switch(con, dataset)
        switched_on = since = None
        restored = False
        if switch is not None:
            switch_id, reason, since = switch
            restored = reason.startswith(ROLLBACK_REASON_PREFIX)
            switched_on = _switched_on(con, dataset, night, switch_id, since)
        counts = labelled_counts(con, dataset, champion, night)
        before = (labelled_counts(con, dataset, previous, night, policy.rollback_baseline_days)
                  if previous else Counts(0, 0))
        held_out = None
        if previous is not None:
            held_out = (get_version(previous, con).card.get("metrics") or {}).get("accuracy")
        refused = _refusal(con, dataset, champion, since)
    return RollbackEvidence(
        dataset, night, champion, previous, counts, before,
        float(held_out) if isinstance(held_out, int | float) else None, switched_on,
        restored, refused)


# ------------------------------------------------------------------------ the night's step


def recorded_rollback(dataset: str, night: date) -> RollbackDecision | None:
    """The decision of a night that already rolled back (None otherwise)."""
    fields = [f for f in RollbackDecision.__dataclass_fields__ if f != "needs_person"]
    with connect(read_only=True) as con:
        row = con.execute(f"SELECT {', '.join(fields)} FROM rollback_checks"
                          " WHERE dataset = ? AND night_date = ? AND rollback",
                          [dataset, night]).fetchone()
    return None if row is None else RollbackDecision(**dict(zip(fields, row, strict=True)))


def record(decision: RollbackDecision) -> None:
    """Write the night's row (replacing an earlier run's: `watch_champion` keeps one that
    rolled back)."""
    values = {k: v for k, v in decision.as_dict().items() if k != "needs_person"}
    values["decided_at"] = datetime.now(UTC).replace(tzinfo=None)
    with transaction() as con:
        con.execute("DELETE FROM rollback_checks WHERE dataset = ? AND night_date = ?",
                    [decision.dataset, decision.night_date])
        con.execute(f"INSERT INTO rollback_checks ({', '.join(values)})"
                    f" VALUES ({', '.join('?' * len(values))})", list(values.values()))


def _alert(decision: RollbackDecision) -> str:
    night = decision.night_date.isoformat()
    if decision.rollback:
        message = (f"{decision.dataset} {night}: champion {decision.champion_version} rolled "
                   f"back to {decision.restored_version}: {decision.reason}")
    else:
        message = f"{decision.dataset} {night}: {decision.reason}"
    details = json.loads(json.dumps(decision.as_dict(), default=str))
    return raise_alert(ALERT_KIND, message, severity="critical", dataset=decision.dataset,
                       details=details, dedupe_key=f"{ALERT_KIND}:{decision.dataset}:{night}"
                       ).alert_id


def watch_champion(dataset: str, night: date, policy: RetrainingPolicy | None = None
                   ) -> RollbackDecision:
    """The night's step: decide, roll back by itself when a rule says so, record the
    decision with its evidence, and raise one alert when it rolled back (or should have but
    cannot: a person must act)."""
    done = recorded_rollback(dataset, night)
    if done is not None:
        return done
    policy = policy or policy_for(dataset)
    evidence = gather_evidence(dataset, night, policy)
    decision = evaluate_rollback(evidence, policy)
    if decision.rollback and (unusable := _unusable(evidence.previous_version)):
        decision = evaluate_rollback(replace(evidence, previous_unusable=unusable), policy)
    if decision.rollback:
        restored = rollback(dataset, reason=f"automatic, {decision.reason}")
        decision = replace(decision, restored_version=restored)
    if decision.rollback or decision.needs_person:
        decision = replace(decision, alert_id=_alert(decision))
    with connect(read_only=True) as con:
        switch = _last_switch(con, dataset)
    record(replace(decision, switch_id=switch[0] if switch else None))
    return replace(decision, switch_id=switch[0] if switch else None)
