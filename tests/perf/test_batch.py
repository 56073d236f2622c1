"""The batch figures' claims as ratios measured in the same run, never absolute times."""

import pytest

from aam_dcs.jobs.planner import queue_message
from local.dcs_simulator import DcsSimulator
from tests.perf.batch import BUDGETS, JOBS, Stopwatch, batch_verdicts, bench_settings, quiet
from tests.support.signals import sqs_records

pytestmark = pytest.mark.integration

LATENCY_MS = 50


@pytest.fixture(scope="module")
def simulator_url():
    with DcsSimulator() as simulator:
        simulator.set_faults(latency_ms=LATENCY_MS)
        yield simulator.url


@pytest.mark.parametrize("job", JOBS, ids=lambda job: job.name)
def test_a_batch_of_ten_visitors_takes_a_fraction_of_their_calls_in_a_row(job, simulator_url):
    settings = bench_settings(simulator_url)
    planned = [job.mapper(settings)(job.row(number)) for number in range(30)]
    messages = [queue_message(message, job_id="ratio") for message in planned if message is not None]
    worker = job.worker(settings)
    with quiet():
        invoke(worker, messages[:10])  # warm: imports, connections and threads
        with Stopwatch() as together:
            invoke(worker, messages[10:20])
        with Stopwatch() as one_by_one:
            for message in messages[20:30]:
                invoke(worker, [message])
    assert worker.dead_letters.messages == []
    # Ten calls in a row wait ten latencies; ten groups at once about one, plus their CPU.
    assert together.wall * 3 < one_by_one.wall


def invoke(worker, messages):
    assert worker.invoke(sqs_records(messages)) == {"batchItemFailures": []}


def figures(planner, worker, x_naive, rss):
    job_figures = {
        "planner": {"rows_per_s": planner},
        "worker": {"pct_of_bound": worker},
        "job_throughput": {"x_naive": x_naive, "max_concurrency": 2},
        "memory": {"peak_rss_mb": rss, "rows": 10_000},
    }
    return {part: {job.name: values for job in JOBS} for part, values in job_figures.items()}


def test_each_figure_is_judged_against_its_budget():
    at_budget = figures(*(BUDGETS[name] for name in BUDGETS))
    assert all(passed for *_, passed in batch_verdicts(at_budget))
    missed = figures(4_999.9, 74.9, 19.9, 100.1)
    assert not any(passed for *_, passed in batch_verdicts(missed))
    assert len(batch_verdicts(missed)) == 4 * len(JOBS)
