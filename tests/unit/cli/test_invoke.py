"""``jobledger invoke``: Usercube-Invoke-Job's flags, progress, exit codes and ``--repair-job``."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest
from tests.unit.cli.conftest import last_drive

from jobledger import Jobs, wire
from jobledger.cli import ExitCode
from jobledger.runner import Runner
from jobledger.sqlite import SQLiteRepository

if TYPE_CHECKING:
    from tests.unit.cli.conftest import Jobledger


class TestInvoke:
    """Launching a job from the command line and following its run to the end."""

    @pytest.mark.parametrize(
        ("flags", "expected"),
        [
            (("-b", "2"), {"synchronize": "completed", "provision": "completed"}),
            (("--begin-job-step", "2"), {"synchronize": "completed", "provision": "completed"}),
            (("-e", "1"), {"export_people": "completed", "export_accounts": "completed"}),
            (
                ("--end-job-step", "1"),
                {"export_people": "completed", "export_accounts": "completed"},
            ),
            (("-t", "export_accounts"), {"export_accounts": "completed"}),
            (("--task-identifier", "export_accounts"), {"export_accounts": "completed"}),
            (("-c", "export"), {"export_people": "completed"}),
            (("--task-type", "export"), {"export_people": "completed"}),
            (("-s", "_acc"), {"export_accounts": "completed"}),
            (("--task-string-contains", "_acc"), {"export_accounts": "completed"}),
            (("-b", "2", "-e", "2"), {"synchronize": "completed"}),
        ],
    )
    def test_each_selection_flag_and_its_short_form_selects_the_runners_tasks(
        self, jobledger: Jobledger, store: str, flags: tuple[str, ...], expected: dict[str, str]
    ) -> None:
        """Begin/end step, task, task type and contains select tasks as the runner defines them."""
        result = jobledger(
            "invoke", "-j", "nightly", *flags, "--app", jobledger.app, "--store", store, "--json"
        )

        assert (ExitCode.OK, expected) == (
            result.exit_code,
            jobledger.statuses(json.loads(result.stdout)),
        )

    @pytest.mark.parametrize("flag", ["-f", "--force-synchronization-provisioning"])
    def test_the_force_threshold_lets_the_guarded_task_proceed(
        self, jobledger: Jobledger, store: str, flag: str
    ) -> None:
        """-f and its long form hand the threshold to the guarded task, which then proceeds."""
        result = jobledger(
            "invoke",
            "-j",
            "nightly",
            flag,
            "8",
            "--input",
            '{"changes": 8}',
            "--app",
            jobledger.app,
            "--store",
            store,
            "--json",
        )

        document = json.loads(result.stdout)
        assert (ExitCode.OK, 8, "completed") == (
            result.exit_code,
            document["Run"]["Input"]["force"],
            jobledger.statuses(document)["synchronize"],
        )

    def test_the_selection_is_recorded_in_the_runs_input(
        self, jobledger: Jobledger, store: str
    ) -> None:
        """The flags reach the ledger as the run's selection, so every process can see them."""
        result = jobledger(
            "invoke",
            "-j",
            "nightly",
            "-b",
            "1",
            "-e",
            "2",
            "-s",
            "export",
            "--app",
            jobledger.app,
            "--store",
            store,
            "--json",
        )

        assert {"begin_step": 1, "end_step": 2, "contains": "export"} == json.loads(result.stdout)[
            "Run"
        ]["Input"]["selection"]

    def test_a_completed_run_prints_each_step_and_task_and_exits_0(
        self, jobledger: Jobledger, store: str
    ) -> None:
        """Off a terminal, progress is one line per launch and per task end, then the outcome."""
        result = jobledger("invoke", "-j", "nightly", "--app", jobledger.app, "--store", store)
        run_id = jobledger.run_id(result.stdout)

        assert (ExitCode.OK, "") == (result.exit_code, result.stderr)
        printed = jobledger.lines(result.stdout)
        # The two exports run together: either may end first.
        assert {
            "  export_people: completed: 12 people exported",
            "  export_accounts: completed: 10 accounts exported",
        } == set(printed[2:4])
        assert [
            f"Run {run_id} of nightly (Nightly test job)",
            "step 1: launching export_people, export_accounts",
            "step 2: launching synchronize",
            "  synchronize: completed: 0 changes synchronized",
            "step 3: launching provision",
            "  provision: completed: provisioned",
            "",
        ] == printed[:2] + printed[4:9]
        assert jobledger.lines(result.stdout)[9].startswith(f"Run {run_id} completed, ")

    def test_a_run_with_warnings_exits_3_and_lists_them(
        self, jobledger: Jobledger, store: str
    ) -> None:
        """A failed task in warning mode is a warning: the run completes, with exit code 3."""
        result = jobledger(
            "invoke",
            "-j",
            "nightly",
            "--input",
            '{"directory_down": true}',
            "--app",
            jobledger.app,
            "--store",
            store,
        )

        assert ExitCode.WARNINGS == result.exit_code
        assert [
            "With 1 warning(s):",
            "  export_accounts: ConnectionError: the directory did not answer",
        ] == jobledger.lines(result.stdout)[-2:]

    def test_a_failed_run_exits_4_and_names_the_failed_task(
        self, jobledger: Jobledger, store: str
    ) -> None:
        """A task's error fails the run: exit code 4, and the task and its error are printed."""
        result = jobledger(
            "invoke",
            "-j",
            "nightly",
            "--input",
            '{"provisioning_fails": true}',
            "--app",
            jobledger.app,
            "--store",
            store,
        )
        run_id = jobledger.run_id(result.stdout)

        assert ExitCode.FAILED == result.exit_code
        assert [
            f"Run {run_id} failed.",
            "  provision: RuntimeError: the directory refused the changes",
            f"Its log: jobledger history {run_id} --store {store}",
        ] == jobledger.lines(result.stdout)[-3:]

    def test_a_blocked_run_exits_5_and_prints_the_commands_that_resume_it(
        self, jobledger: Jobledger, store: str
    ) -> None:
        """The block, its details and the commands to resume or cancel the run are printed."""
        result = jobledger(
            "invoke",
            "-j",
            "nightly",
            "--input",
            '{"changes": 9}',
            "--app",
            jobledger.app,
            "--store",
            store,
        )
        run_id = jobledger.run_id(result.stdout)

        assert ExitCode.BLOCKED == result.exit_code
        assert [
            f"Run {run_id} is blocked at step 2:",
            "  synchronize: 9 changes cross the threshold of 5",
            "    changes: 9",
            "    threshold: 5",
            "Resume it with repair (the blocked task's repair variant runs in its place):",
            f"    jobledger invoke -j nightly --repair-job --app {jobledger.app} --store {store}",
            "or run the blocked task again with a new force threshold N:",
            f"    jobledger resume {run_id} --force N --app {jobledger.app} --store {store}",
            f"or cancel it: jobledger cancel {run_id} --store {store}",
        ] == jobledger.lines(result.stdout)[-9:]

    @pytest.mark.parametrize("flag", ["-r", "--repair-job"])
    def test_repair_job_resumes_the_latest_blocked_run_with_repair(
        self, jobledger: Jobledger, store: str, ledger: Jobs, flag: str
    ) -> None:
        """-r finds the newest blocked run of the job and runs the repair variant in its place."""
        for concurrent in ((), ("--concurrent",)):
            jobledger(
                "invoke",
                "-j",
                "nightly",
                "--input",
                '{"changes": 9}',
                *concurrent,
                "--app",
                jobledger.app,
                "--store",
                store,
            )
        older, newer = sorted(job.id for job in ledger.find(type="nightly", entity="job").jobs)

        result = jobledger(
            "invoke", "-j", "nightly", flag, "--app", jobledger.app, "--store", store, "--json"
        )

        document = json.loads(result.stdout)
        assert (ExitCode.OK, newer, "completed", "blocked") == (
            result.exit_code,
            document["Run"]["JobId"],
            document["Status"],
            ledger.get(older).status,
        )
        assert (True, "validated") == (
            jobledger.task(document, "synchronize")["Repair"],
            jobledger.task(document, "synchronize")["Summary"],
        )

    def test_repair_job_without_a_blocked_run_exits_7(
        self, jobledger: Jobledger, store: str
    ) -> None:
        """With no blocked run to repair, one line says so and the exit code is 7 (not found)."""
        result = jobledger(
            "invoke", "-j", "nightly", "-r", "--app", jobledger.app, "--store", store
        )

        assert (ExitCode.NOT_FOUND, "") == (result.exit_code, result.stdout)
        assert [
            (
                "jobledger: no blocked run of job 'nightly' to repair; "
                "`jobledger list --type nightly` lists its runs"
            )
        ] == jobledger.lines(result.stderr)

    def test_repair_job_refuses_selection_flags(self, jobledger: Jobledger, store: str) -> None:
        """-r resumes a run as it was launched, so a selection with it is a usage error (2)."""
        result = jobledger(
            "invoke",
            "-j",
            "nightly",
            "-r",
            "-t",
            "provision",
            "--app",
            jobledger.app,
            "--store",
            store,
        )

        assert ExitCode.USAGE == result.exit_code
        assert "--repair-job resumes the blocked run as it was launched" in result.stderr

    def test_the_json_output_holds_the_runs_job_in_the_wire_format(
        self, jobledger: Jobledger, store: str, ledger: Jobs
    ) -> None:
        """--json prints the run: its Run is its job, which the wire codec reads back as stored."""
        result = jobledger(
            "invoke", "-j", "nightly", "--app", jobledger.app, "--store", store, "--json"
        )

        document = json.loads(result.stdout)
        job = wire.decode_job(document["Run"])
        assert (ledger.get(job.id), "completed", {"Done": 4, "Total": 4}) == (
            job,
            document["Status"],
            document["Progress"],
        )

    def test_the_input_reaches_every_task(self, jobledger: Jobledger, store: str) -> None:
        """--input is the run's input, recorded and handed to the tasks."""
        result = jobledger(
            "invoke",
            "-j",
            "nightly",
            "--input",
            '{"changes": 3, "note": "é"}',
            "--app",
            jobledger.app,
            "--store",
            store,
            "--json",
        )

        document = json.loads(result.stdout)
        assert ({"changes": 3, "note": "é"}, "3 changes synchronized") == (
            document["Run"]["Input"]["input"],
            jobledger.task(document, "synchronize")["Summary"],
        )

    def test_input_that_is_not_json_is_a_usage_error(
        self, jobledger: Jobledger, store: str
    ) -> None:
        """--input must be JSON; anything else exits 2 before a run starts."""
        result = jobledger(
            "invoke", "-j", "nightly", "--input", "{oops", "--app", jobledger.app, "--store", store
        )

        assert (ExitCode.USAGE, False) == (result.exit_code, Path(store).exists())

    def test_an_empty_selection_is_a_usage_error(self, jobledger: Jobledger, store: str) -> None:
        """A selection that selects nothing is reported in one line, with exit code 2."""
        result = jobledger(
            "invoke", "-j", "nightly", "-t", "nothing", "--app", jobledger.app, "--store", store
        )

        expected = [
            (
                "jobledger: cannot select tasks of job definition 'nightly': "
                "no task 'nothing' in the definition"
            )
        ]
        assert (ExitCode.USAGE, expected) == (result.exit_code, jobledger.lines(result.stderr))

    def test_an_unknown_job_exits_7_naming_the_jobs_of_the_app(
        self, jobledger: Jobledger, store: str
    ) -> None:
        """-j must name a job of --app; otherwise one line lists the ones it has (exit 7)."""
        result = jobledger("invoke", "-j", "weekly", "--app", jobledger.app, "--store", store)

        expected = [
            (
                f"jobledger: there is no job 'weekly' in --app '{jobledger.app}' (it defines "
                "hold, interrupt-once, interrupt-twice, nightly, stuck, terminate, unrepaired); "
                "check -j, or give the --app (or JOBLEDGER_APP) that defines it"
            )
        ]
        assert (ExitCode.NOT_FOUND, expected) == (result.exit_code, jobledger.lines(result.stderr))

    def test_without_a_job_identifier_it_is_clicks_usage_error(self, jobledger: Jobledger) -> None:
        """-j is required: leaving it out is click's usage error, exit code 2."""
        result = jobledger("invoke")

        assert (ExitCode.USAGE, True) == (
            result.exit_code,
            "Missing option '-j' / '--job-identifier'" in result.stderr,
        )

    def test_ctrl_c_requests_cancellation_and_the_run_ends_canceled(
        self, jobledger: Jobledger, store: str
    ) -> None:
        """A SIGINT while the run goes asks it to cancel: the task sees it, the run exits 6."""
        result = jobledger(
            "invoke", "-j", "interrupt-once", "--app", jobledger.app, "--store", store, "--json"
        )

        document = json.loads(result.stdout)
        assert (ExitCode.CANCELED, "canceled") == (result.exit_code, document["Status"])
        assert ({"saw_cancel": True}, "pending") == (
            jobledger.task(document, "wait")["Summary"],
            jobledger.task(document, "after")["Status"],
        )
        assert "Ctrl-C: cancel requested" in result.stderr


class TestInvokeActor:
    """``invoke --actor`` and ``JOBLEDGER_ACTOR``: who the run's changes name."""

    def test_actor_names_every_change_of_the_run_and_its_drive(
        self, jobledger: Jobledger, store: str, ledger: Jobs
    ) -> None:
        """--actor names the run's and its launches' starts and updates, and its drive."""
        result = jobledger(
            "invoke", "-j", "nightly", "--actor", "alice", "--app", jobledger.app, "--store", store
        )
        run_id = jobledger.run_id(result.stdout)

        assert ExitCode.OK == result.exit_code
        assert {"alice"} == {
            ledger.get(run_id).started_by,
            ledger.get(f"{run_id}/1").started_by,
            *(update.actor for update in ledger.updates(run_id)),
            *(update.actor for update in ledger.updates(f"{run_id}/1")),
        }
        assert (1, "alice") == last_drive(ledger, run_id)

    def test_the_actor_may_come_from_the_environment(
        self, jobledger: Jobledger, store: str, ledger: Jobs
    ) -> None:
        """JOBLEDGER_ACTOR gives the actor when --actor is not given; without both, no one."""
        named = jobledger(
            "invoke",
            "-j",
            "nightly",
            "--app",
            jobledger.app,
            "--store",
            store,
            env={"JOBLEDGER_ACTOR": "scheduler"},
        )
        anonymous = jobledger("invoke", "-j", "nightly", "--app", jobledger.app, "--store", store)

        assert ({"scheduler"}, {None}) == (
            {update.actor for update in ledger.updates(jobledger.run_id(named.stdout))},
            {update.actor for update in ledger.updates(jobledger.run_id(anonymous.stdout))},
        )

    def test_repair_job_names_the_actor_of_its_resume(
        self, jobledger: Jobledger, store: str, ledger: Jobs
    ) -> None:
        """-r --actor records the actor on the drive that resumes the blocked run."""
        run_id = jobledger.invoke_blocked(store)

        result = jobledger(
            "invoke",
            "-j",
            "nightly",
            "-r",
            "--actor",
            "bob",
            "--app",
            jobledger.app,
            "--store",
            store,
        )

        assert ExitCode.OK == result.exit_code
        assert (2, "bob") == last_drive(ledger, run_id)


class TestOneRunAtATime:
    """A job runs once at a time unless --concurrent says otherwise."""

    def test_invoking_a_job_with_a_blocked_run_is_refused_naming_it(
        self, jobledger: Jobledger, store: str
    ) -> None:
        """The second invoke exits 10 with one line naming the blocked run and how to go on."""
        run_id = jobledger.invoke_blocked(store)

        result = jobledger("invoke", "-j", "nightly", "--app", jobledger.app, "--store", store)

        assert (ExitCode.BUSY, "") == (result.exit_code, result.stdout)
        assert [
            (
                f"jobledger: job 'nightly' already has a blocked run, {run_id}, and runs once at a "
                f"time: resume it (`jobledger invoke -j nightly --repair-job --app {jobledger.app} "
                f"--store {store}` or `jobledger resume {run_id} --force N --app {jobledger.app} "
                f"--store {store}`) or cancel it (`jobledger cancel {run_id} --store {store}`); "
                "or give --concurrent to start another run alongside"
            )
        ] == jobledger.lines(result.stderr)

    def test_invoking_a_job_with_a_driven_run_says_to_wait_or_cancel(
        self, jobledger: Jobledger, store: str
    ) -> None:
        """While another runner drives a run of the job, invoke is refused (10) naming it."""
        from tests.unit.cli.conftest import RELEASE, STARTED, nightly_definitions  # noqa: PLC0415

        elsewhere = Jobs(repository=SQLiteRepository(store))
        runner = Runner(elsewhere, nightly_definitions(), poll_interval=0.05)
        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(runner.invoke, "hold", run_id="run-1")
            assert STARTED.wait(timeout=30)
            result = jobledger("invoke", "-j", "hold", "--app", jobledger.app, "--store", store)
            runner.request_cancel("run-1")
            RELEASE.set()
            running.result(timeout=30)

        assert (ExitCode.BUSY, "") == (result.exit_code, result.stdout)
        assert [
            (
                "jobledger: job 'hold' already has a running run, run-1, and runs once at a time: "
                f"wait for it to end, or cancel it (`jobledger cancel run-1 --store {store}`); "
                "or give --concurrent to start another run alongside"
            )
        ] == jobledger.lines(result.stderr)

    def test_concurrent_starts_a_run_alongside_a_blocked_one(
        self, jobledger: Jobledger, store: str, ledger: Jobs
    ) -> None:
        """--concurrent starts a second run: both are blocked, each its own run."""
        first = jobledger.invoke_blocked(store)

        result = jobledger(
            "invoke",
            "-j",
            "nightly",
            "--input",
            '{"changes": 9}',
            "--concurrent",
            "--app",
            jobledger.app,
            "--store",
            store,
        )

        second = jobledger.run_id(result.stdout)
        assert (ExitCode.BLOCKED, True, "blocked") == (
            result.exit_code,
            first != second,
            ledger.get(first).status,
        )

    def test_repair_job_with_concurrent_is_a_usage_error(
        self, jobledger: Jobledger, store: str
    ) -> None:
        """--repair-job resumes a run; --concurrent starts one: together they exit 2."""
        result = jobledger(
            "invoke",
            "-j",
            "nightly",
            "-r",
            "--concurrent",
            "--app",
            jobledger.app,
            "--store",
            store,
        )

        assert ExitCode.USAGE == result.exit_code


class TestAbandonedTask:
    """A thread task abandoned past its timeout does not keep the command alive."""

    def test_the_command_exits_at_once_with_the_runs_exit_code(
        self, jobledger: Jobledger, store: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The run fails on the timeout and the process is ended without waiting for the thread."""
        from tests.unit.cli.conftest import RELEASE  # noqa: PLC0415

        ended: list[int] = []

        def exit_now(code: int) -> NoReturn:
            ended.append(code)
            raise SystemExit(code)

        monkeypatch.setattr("jobledger.cli._progress.exit_now", exit_now)
        try:
            result = jobledger("invoke", "-j", "stuck", "--app", jobledger.app, "--store", store)
        finally:
            RELEASE.set()

        assert ([ExitCode.FAILED], ExitCode.FAILED) == (ended, result.exit_code)
        assert "did not finish within its timeout of 0.2s" in result.stdout

    def test_a_run_without_an_abandoned_task_exits_normally(
        self, jobledger: Jobledger, store: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without an abandoned thread, the command ends as usual (the store closed)."""
        ended: list[int] = []
        monkeypatch.setattr("jobledger.cli._progress.exit_now", ended.append)

        result = jobledger("invoke", "-j", "nightly", "--app", jobledger.app, "--store", store)

        assert ([], ExitCode.OK) == (ended, result.exit_code)
