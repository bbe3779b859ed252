"""TrainingFlow: the Metaflow flow that trains a dataset's candidates and registers the best.

    1. start   load the training window from the warehouse (read-only), check it, choose the
               algorithms for this dataset's size and kind, and make the stratified held-out
               split every branch shares
    2. train   one branch per algorithm (foreach): Optuna tuning, fit, evaluate
               (@retry for transient failures, @catch so one broken branch does not sink the run)
    3. join    collect results, record failed branches, select (performance first: only the
               candidates tied with the best macro F1 are ranked by the multi-criteria score),
               significance tests, ensemble advice; refit the winner on every labelled row
               but the conformal calibration half of the held-out rows, and calibrate its
               review sets on that half (models/evaluation/conformal.py);
               write the winner's model report and the production report; register the winner
               as the challenger, with the run's candidate results, in one warehouse
               transaction: the refit is the artifact, the training-split fit (whose held-out
               figures the card and the gate use) travels beside it
    4. end     say what was registered (Metaflow requires a last step that is not a join)

Only `join` writes to the warehouse (DuckDB allows one writer); branches keep their results as
Metaflow artifacts, readable with `metaflow.Flow("TrainingFlow")`. Each step is a few lines
that call plain functions of `models`, so the same code runs in a test and in `@kubernetes`.

Why so few steps and light imports: every Metaflow task is a fresh Python process that pays
its start, its imports (scikit-learn and its scientific stack: about 2 s on this 2-core host)
and an artifact round trip. A step that only passes data along (the former `split`, `report`
and a registering `end`) costs that for milliseconds of work, so their work is part of `start`
and `join`, and `end` imports nothing but Metaflow. This module is what each task imports
first, so it imports Metaflow and nothing heavy; each step imports what it needs
(`models.training.steps.import_for`) before its work is timed. Each task records
`work_seconds`, the seconds of its step's work after those imports, so a benchmark can tell
work from orchestration (process start, imports, artifact persistence). Each task also keeps
what its process cost the machine (`models.training.costs.task_cost`: CPU seconds, wall time,
peak memory, imports included), and `join` stores them per branch and in total
(`training_costs`).

    python -m models.training.flow run --dataset customer --trials 20 --max-workers 2
"""

from __future__ import annotations

import os
import time

# Metaflow reads its configuration when imported: keep its datastore under the data home.
# The runner passes it in the environment of every task; only a direct `python flow.py run`
# pays for the settings import here.
if "METAFLOW_DATASTORE_SYSROOT_LOCAL" not in os.environ:
    from warehouse.settings import get_settings

    os.environ["METAFLOW_DATASTORE_SYSROOT_LOCAL"] = str(get_settings().metaflow_dir)
os.environ.setdefault("USERNAME", os.environ.get("USER") or "overnight")

from metaflow import (  # type: ignore[attr-defined]
    FlowSpec,
    Parameter,
    catch,
    current,
    resources,
    retry,
    step,
)

from models.training.costs import task_cost  # imports the standard library only


class TrainingFlow(FlowSpec):
    """Train, tune and rank a dataset's candidate models; register the winner as challenger."""

    dataset = Parameter("dataset", help="Dataset name (built-in or ingested).", required=True)
    start_date = Parameter("start_date", default="", help="First batch date of the window.")
    end_date = Parameter("end_date", default="", help="Last batch date of the window.")
    test_size = Parameter("test_size", default=0.25, type=float, help="Held-out share.")
    cv_folds = Parameter("cv_folds", default=3, type=int, help="Cross-validation folds.")
    n_jobs = Parameter("n_jobs", default=1, type=int, help="Threads per model that supports it.")
    optimize = Parameter("optimize", default=True, type=bool,
                         help="Tune hyper-parameters with Optuna (else catalogue defaults).")
    trials = Parameter("trials", default=20, type=int, help="Optuna trials per algorithm.")
    time_budget = Parameter("time_budget", default=120.0, type=float,
                            help="Seconds of tuning per algorithm at most.")
    imbalance = Parameter("imbalance", default="", help="Imbalance strategy ('' = per dataset).")
    text_stats = Parameter("text_stats", default=False, type=bool,
                           help="Text datasets: add length, readability and sentiment features.")
    algorithms = Parameter("algorithms", default="",
                           help="Comma-separated algorithms ('' = chosen for the data).")
    seed = Parameter("seed", default=42, type=int, help="Random seed of splits and models.")
    optuna_storage = Parameter("optuna_storage", default="",
                               help="Optuna RDB URL to share studies between workers.")
    fail_algorithm = Parameter("fail_algorithm", default="",
                               help="Failure drill: this branch raises (tests @catch).")
    review_error_rate = Parameter("review_error_rate", default=0.1, type=float,
                                  help="Error rate of the conformal review sets (policy).")
    flaky_algorithm = Parameter("flaky_algorithm", default="",
                                help="Failure drill: this branch fails once (tests @retry).")

    @step
    def start(self):
        """Load the training window read-only, check it, choose the algorithms, split."""
        from models.learning.fit import split_data
        from models.training.steps import (
            import_for,
            load_window,
            plan_algorithms,
            utc_now,
            window_shares,
        )

        import_for("start")
        started = time.perf_counter()
        self.started_at = utc_now()
        self.spec, self.frame, self.training_batches = load_window(
            self.dataset, self.start_date or None, self.end_date or None)
        self.plan = plan_algorithms(self.spec, len(self.frame), self.algorithms,
                                    self.imbalance, window_shares(self.frame, self.spec))
        self.data = split_data(self.frame, self.spec, test_size=self.test_size, seed=self.seed)
        self.candidates = list(self.plan["algorithms"])
        self.work_seconds = time.perf_counter() - started
        self.start_cost = task_cost("start")
        self.next(self.train, foreach="candidates")

    @catch(var="failure", print_exception=False)
    @retry(times=1, minutes_between_retries=0)
    @resources(cpu=1, memory=4096)
    @step
    def train(self):
        """Tune (optionally) and fit one algorithm; its result stays a Metaflow artifact."""
        from models.training.steps import import_for, train_alternatives, train_branch

        import_for("train")
        started = time.perf_counter()
        self.algorithm = self.input
        failed = True
        try:
            if self.algorithm == self.fail_algorithm:
                raise RuntimeError(f"failure drill: {self.algorithm} configured to raise")
            if self.algorithm == self.flaky_algorithm and current.retry_count == 0:
                raise RuntimeError(f"failure drill: {self.algorithm} fails on its first attempt")
            self.attempts = current.retry_count + 1
            self.result, self.tuning = train_branch(
                self.spec, self.data, self.algorithm, imbalance=self.plan["imbalance"],
                optimize=self.optimize, trials=self.trials, time_budget=self.time_budget,
                cv_folds=self.cv_folds, seed=self.seed, n_jobs=self.n_jobs,
                storage=self.optuna_storage or None,
                study_name=f"{self.dataset}-{current.run_id}-{self.algorithm}",
                text_stats=self.text_stats)
            self.alternatives, self.alternative_failures = [], []
            if self.plan.get("compare_imbalance"):
                self.alternatives, self.alternative_failures = train_alternatives(
                    self.spec, self.data, self.result, cv_folds=self.cv_folds, seed=self.seed,
                    n_jobs=self.n_jobs, text_stats=self.text_stats)
            failed = False
        finally:      # a failed branch that @catch keeps still shows what it burned
            self.branch_cost = task_cost("train", self.algorithm,
                                         attempts=current.retry_count + 1,
                                         status="failed" if failed else "ok")
        self.work_seconds = time.perf_counter() - started
        self.next(self.join)

    @step
    def join(self, inputs):
        """Collect the branches, record failures, rank, refit, report and register."""
        from models.learning.fit import refit_full, summarise_candidates
        from models.training.costs import record_costs
        from models.training.steps import import_for, last_line, register_run, write_reports

        import_for("join")
        started = time.perf_counter()
        # every branch carries the same copies from `start`; take them from the first one
        first = inputs[0]
        self.spec, self.data, self.frame = first.spec, first.data, first.frame
        self.training_batches, self.plan, self.started_at = (
            first.training_batches, first.plan, first.started_at)
        ok = [i for i in inputs if getattr(i, "failure", None) is None]
        self.results = [result for i in ok
                        for result in (i.result, *getattr(i, "alternatives", []))]
        self.failures = [{"algorithm": i.algorithm, "error": last_line(i.failure)}
                         for i in inputs if getattr(i, "failure", None) is not None]
        self.failures += [f for i in ok for f in getattr(i, "alternative_failures", [])]
        self.tunings = {i.algorithm: i.tuning for i in inputs
                        if getattr(i, "failure", None) is None and i.tuning is not None}
        self.summary = summarise_candidates(self.results, self.data, cv_folds=self.cv_folds)
        if self.summary.winner is None:
            raise RuntimeError(f"no candidate can be registered: {self.summary.recommendation}; "
                               f"failures: {self.failures}")
        from models.evaluation.conformal import calibration_rows, review_run

        self.refit = refit_full(self.data, self.summary.winner, n_jobs=self.n_jobs,
                                leave_out=calibration_rows(self.data.x_test, self.data.y_test,
                                                           self.review_error_rate))
        self.conformal = review_run(
            self.summary.winner.model, self.refit.model, self.data.x_test, self.data.y_test,
            list(self.spec.classes), self.review_error_rate, self.spec.confidence_threshold)
        self.pathspec = f"{current.flow_name}/{current.run_id}"
        self.reports = write_reports(self.spec, self.data, self.summary, self.failures,
                                     self.training_batches, self.pathspec, self.seed,
                                     conformal=self.conformal)
        self.model_version = register_run(
            self.spec, self.frame, self.data, self.summary, self.failures,
            self.training_batches, pathspec=self.pathspec, params=self._params(),
            reports=self.reports, seed=self.seed, started_at=self.started_at,
            refit=self.refit, conformal=self.conformal)
        self.work_seconds = time.perf_counter() - started
        self.costs = record_costs(self.pathspec, self.model_version, self.dataset,
                                  [first.start_cost, *(getattr(i, "branch_cost", None)
                                                       for i in inputs)],
                                  task_cost("join"))
        self.next(self.end)

    @step
    def end(self):
        """Say what `join` registered; this task imports nothing beyond Metaflow."""
        started = time.perf_counter()
        print(f"registered {self.model_version} as challenger of {self.dataset}")
        self.work_seconds = time.perf_counter() - started

    def _params(self) -> dict:
        return {name: getattr(self, name) for name in (
            "dataset", "start_date", "end_date", "test_size", "cv_folds", "n_jobs", "optimize",
            "trials", "time_budget", "imbalance", "algorithms", "seed", "review_error_rate",
            "text_stats")}


if __name__ == "__main__":
    TrainingFlow()
