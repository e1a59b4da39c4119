"""The end-of-run report: per-goal success from the task tolerance, and the table."""

from actsac.runtime.report import RunStats, format_table, goal_report, summarize


def test_goal_report_judges_success_against_the_tolerance():
    raw = [{"segment": 0, "goal_index": 0, "goal": [1.0], "final_error": 0.5, "complete": True},
           {"segment": 1, "goal_index": 1, "goal": [2.0], "final_error": 3.0, "complete": True},
           {"segment": 2, "goal_index": 0, "goal": [1.0], "final_error": 9.0, "complete": False}]
    report = goal_report(raw, tolerance=1.0)
    assert [g["success"] for g in report] == [True, False, False]
    assert [g["success"] for g in goal_report(raw, tolerance=None)] == [None, None, None]
    summary = summarize(RunStats(), fps_target=30.0, scheduler=None, controller=None, io=None,
                        exit_reason="completed", exit_code=0)
    summary["goals"] = report
    rows = {line.split()[0] + line.split()[1]: line for line in format_table(summary).splitlines()}
    assert rows["goal0"].endswith("reached 1/1, final error 0.5 (last hold)")
    assert rows["goal1"].endswith("reached 0/1, final error 3.0 (last hold)")
    table = format_table(summary)
    assert summary["ticks"] == 0 and summary["jitter_p99_us"] is None and "rate" in table
