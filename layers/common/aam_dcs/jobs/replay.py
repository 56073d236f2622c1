"""Re-drive dead letters to their source queue after a fix, without sending twice what was delivered.

``python -m aam_dcs.jobs.replay --queue signals|enrich [--reason R] [--dry-run] [--max N]`` (with
``layers/common`` on ``PYTHONPATH``) moves the messages of a dead-letter queue back to the queue
they came from:

- a copy keeps the body, the message group and the identity of its message: the
  ``source_message_id`` attribute names the original message (a dead letter that SQS moved after
  ``maxReceiveCount`` receives is its original: it keeps its ID). The signal worker builds its
  idempotency key from it (or from ``event_id``), so a signal delivered before it was dead-lettered
  is answered from its record and not sent again while the record lives (24 hours);
- a dead letter is deleted only once the source queue has accepted its copy. The copy's
  deduplication ID comes from the dead letter's ID: a replay interrupted between the two steps and
  run again within SQS's 5-minute window queues no second copy (later, the idempotency record
  still holds);
- ``--reason`` (repeatable) replays only the dead letters with that reason (``max_receives``: those
  SQS moved after ``maxReceiveCount`` receives, which carry none). A FIFO queue hands out a visitor's messages
  in order, so a message held back (other reason, past ``--max``, a failed copy) holds back the
  visitor's later messages too: they stay in the DLQ, in order, for a later run;
- ``--dry-run`` lists what would be replayed and changes nothing (it sees one batch of a visitor's
  messages at most); ``--max N`` stops after N copies.

Messages left in the DLQ are made visible again before the command ends. Queue URLs come from
``--source-url``/``--dlq-url``, else from the stack's outputs (``--stack``), else from the
template's queue names in that stack (the local stack has no CloudFormation stack).
``--endpoint-url`` points boto3 at another endpoint (the local stack's moto).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from aam_dcs.jobs.deadletter import ORIGINAL_ID_ATTRIBUTE
from aam_dcs.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient

#: The reason of a dead letter that SQS moved after ``maxReceiveCount`` receives (it has none).
NO_REASON: Final = "max_receives"
#: Attributes that describe the failure, not the message: not copied back to the source queue.
FAILURE_ATTRIBUTES: Final = frozenset({"reason", "details", "receive_count"})
#: How long a received dead letter stays invisible while the replay runs.
HOLD_SECONDS: Final = 900
BATCH_LIMIT: Final = 10


@dataclass(frozen=True)
class QueuePair:
    outputs: tuple[str, str]  # the stack outputs: source queue URL, DLQ URL
    names: tuple[str, str]  # the template's queue names after "<stack>-"


QUEUES: Final = {
    "signals": QueuePair(("SignalQueueUrl", "SignalDeadLetterQueueUrl"), ("signals.fifo", "signals-dlq.fifo")),
    "enrich": QueuePair(("EnrichQueueUrl", "EnrichDeadLetterQueueUrl"), ("enrich.fifo", "enrich-dlq.fifo")),
}


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    receipt_handle: str
    body: str
    group_id: str | None
    attributes: Mapping[str, Mapping[str, Any]]

    @classmethod
    def from_sqs(cls, message: Mapping[str, Any]) -> DeadLetter:
        return cls(
            message_id=message["MessageId"],
            receipt_handle=message["ReceiptHandle"],
            body=message.get("Body", ""),
            group_id=(message.get("Attributes") or {}).get("MessageGroupId"),
            attributes=message.get("MessageAttributes") or {},
        )

    @property
    def reason(self) -> str:
        return self._string("reason") or NO_REASON

    @property
    def original_id(self) -> str:
        return self._string(ORIGINAL_ID_ATTRIBUTE) or self.message_id

    @property
    def group(self) -> str:
        return self.group_id or self.original_id

    def details(self) -> Any:
        try:
            return json.loads(self._string("details") or "null")
        except json.JSONDecodeError:
            return None

    def copy_to(self, queue_url: str) -> dict[str, Any]:
        """The ``SendMessage`` request that puts this message back on ``queue_url``."""
        kept = {name: value for name, value in self.attributes.items() if name not in FAILURE_ATTRIBUTES}
        attributes = {name: _attribute(value) for name, value in kept.items()}
        attributes[ORIGINAL_ID_ATTRIBUTE] = {"DataType": "String", "StringValue": self.original_id}
        request: dict[str, Any] = {"QueueUrl": queue_url, "MessageBody": self.body, "MessageAttributes": attributes}
        if queue_url.endswith(".fifo"):
            request["MessageGroupId"] = self.group
            request["MessageDeduplicationId"] = f"replay-{self.message_id}"
        return request

    def _string(self, name: str) -> str | None:
        value = (self.attributes.get(name) or {}).get("StringValue")
        return str(value) if value else None


def _attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value[key] for key in ("DataType", "StringValue", "BinaryValue") if key in value}


@dataclass
class ReplayReport:
    """One entry per dead letter seen: its ID, reason and what was done with it."""

    source_url: str
    dlq_url: str
    dry_run: bool
    entries: list[dict[str, Any]] = field(default_factory=list)

    def add(self, letter: DeadLetter, action: str, error: str | None = None) -> None:
        entry = {"message_id": letter.message_id, "reason": letter.reason, "action": action}
        details = letter.details()
        if details:
            entry["details"] = details
        if error:
            entry["error"] = error
        self.entries.append(entry)

    def count(self, action: str) -> int:
        return sum(1 for entry in self.entries if entry["action"] == action)

    def to_dict(self) -> dict[str, Any]:
        by_action: dict[str, Counter[str]] = {}
        for entry in self.entries:
            by_action.setdefault(entry["action"], Counter())[entry["reason"]] += 1
        return {
            "source_queue": self.source_url,
            "dead_letter_queue": self.dlq_url,
            "dry_run": self.dry_run,
            "counts": {action: dict(reasons) for action, reasons in sorted(by_action.items())},
            "messages": self.entries,
        }


@dataclass
class Selection:
    """Which dead letters a run takes: by reason, up to a number, never past a held-back one of a group."""

    reasons: Collection[str] | None = None
    max_messages: int | None = None
    taken: int = 0
    blocked: set[str] = field(default_factory=set)

    def full(self) -> bool:
        return self.max_messages is not None and self.taken >= self.max_messages

    def verdict(self, letter: DeadLetter) -> str:
        """``take``, ``skipped`` (another reason) or ``held_back`` (its group is blocked, or the run is full)."""
        if letter.group in self.blocked:
            return "held_back"
        if self.reasons is not None and letter.reason not in self.reasons:
            return "skipped"
        return "held_back" if self.full() else "take"


@dataclass
class DeadLetterReplay:
    sqs: SQSClient
    source_url: str
    dlq_url: str
    wait_seconds: int = 1

    def run(
        self, *, reasons: Collection[str] | None = None, max_messages: int | None = None, dry_run: bool = False
    ) -> ReplayReport:
        """Replay the dead letters with one of ``reasons`` (None: any), at most ``max_messages``."""
        report = ReplayReport(self.source_url, self.dlq_url, dry_run)
        selection = Selection(reasons, max_messages)
        held: list[DeadLetter] = []
        try:
            for letter in self._dead_letters(selection.full):
                action, error = self._handle(letter, selection, dry_run)
                report.add(letter, action, error)
                if action not in ("replayed", "would_replay"):
                    selection.blocked.add(letter.group)
                if action != "replayed":
                    held.append(letter)
        finally:
            self._release(held)
        return report

    def _handle(self, letter: DeadLetter, selection: Selection, dry_run: bool) -> tuple[str, str | None]:
        """``(action, error)`` for one dead letter."""
        verdict = selection.verdict(letter)
        if verdict != "take":
            return verdict, None
        selection.taken += 1
        if dry_run:
            return "would_replay", None
        error = self._replay(letter)
        return ("failed", error) if error else ("replayed", None)

    def _replay(self, letter: DeadLetter) -> str | None:
        """Copy to the source queue, then delete from the DLQ; the error, or None."""
        try:
            accepted = self.sqs.send_message(**letter.copy_to(self.source_url))
        except Exception as error:
            return f"the source queue refused the copy: {type(error).__name__}: {error}"
        if not accepted.get("MessageId"):
            return "the source queue did not accept the copy"
        try:
            self.sqs.delete_message(QueueUrl=self.dlq_url, ReceiptHandle=letter.receipt_handle)
        except Exception as error:
            return f"queued again but still in the DLQ (a rerun is harmless): {type(error).__name__}: {error}"
        return None

    def _dead_letters(self, done: Callable[[], bool]) -> Iterator[DeadLetter]:
        """Every dead letter the queue hands out, each once, until it has no new ones or ``done()``."""
        seen: set[str] = set()
        while not done():
            answer = self.sqs.receive_message(
                QueueUrl=self.dlq_url,
                MaxNumberOfMessages=BATCH_LIMIT,
                WaitTimeSeconds=self.wait_seconds,
                VisibilityTimeout=HOLD_SECONDS,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["MessageGroupId"],
            )
            letters = [DeadLetter.from_sqs(message) for message in answer.get("Messages") or []]
            fresh = [letter for letter in letters if letter.message_id not in seen]
            if not fresh:
                return
            seen.update(letter.message_id for letter in fresh)
            yield from fresh

    def _release(self, letters: list[DeadLetter]) -> None:
        """Make held dead letters visible again, in the order they came."""
        for start in range(0, len(letters), BATCH_LIMIT):
            entries: list[Any] = [
                {"Id": str(index), "ReceiptHandle": letter.receipt_handle, "VisibilityTimeout": 0}
                for index, letter in enumerate(letters[start : start + BATCH_LIMIT])
            ]
            try:
                self.sqs.change_message_visibility_batch(QueueUrl=self.dlq_url, Entries=entries)
            except Exception as error:  # they come back when HOLD_SECONDS have passed
                logger.warning("could not release dead letters", extra={"error": type(error).__name__})


def queue_urls(kind: str, *, stack: str | None, sqs: Any, cloudformation: Any) -> tuple[str, str]:
    """The source queue and DLQ of ``kind``: the stack's outputs, else the template's names in it."""
    if not stack:
        raise ValueError("give --stack, or both --source-url and --dlq-url")
    pair = QUEUES[kind]
    outputs = stack_outputs(cloudformation, stack)
    if all(outputs.get(name) for name in pair.outputs):
        return outputs[pair.outputs[0]], outputs[pair.outputs[1]]
    source, dlq = (sqs.get_queue_url(QueueName=f"{stack}-{name}")["QueueUrl"] for name in pair.names)
    return source, dlq


def stack_outputs(cloudformation: Any, stack: str) -> dict[str, str]:
    """The stack's outputs by key; none when CloudFormation does not know the stack."""
    from botocore.exceptions import ClientError  # noqa: PLC0415 - loaded by the command only

    try:
        stacks = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ValidationError":  # "Stack ... does not exist"
            raise
        return {}
    return {output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs") or []}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m aam_dcs.jobs.replay", description="Re-drive dead-lettered messages to their source queue."
    )
    parser.add_argument("--queue", choices=sorted(QUEUES), required=True, help="which dead-letter queue")
    parser.add_argument(
        "--reason",
        action="append",
        dest="reasons",
        metavar="REASON",
        help=f"only dead letters with this reason ({NO_REASON}: moved by SQS); repeat for several",
    )
    parser.add_argument("--dry-run", action="store_true", help="list what would be replayed, change nothing")
    parser.add_argument("--max", type=int, dest="max_messages", metavar="N", help="replay at most N messages")
    parser.add_argument("--stack", help="the stack whose outputs (or queue names) give the queue URLs")
    parser.add_argument("--source-url", help="the source queue URL (instead of the stack's)")
    parser.add_argument("--dlq-url", help="the dead-letter queue URL (instead of the stack's)")
    parser.add_argument("--region", help="AWS region (default: the environment's)")
    parser.add_argument("--endpoint-url", help="another AWS endpoint, e.g. the local stack's moto")
    args = parser.parse_args(argv)
    if args.max_messages is not None and args.max_messages < 1:
        parser.error("--max must be at least 1")
    if not (args.stack or (args.source_url and args.dlq_url)):
        parser.error("give --stack, or both --source-url and --dlq-url")
    return args


def main(argv: list[str] | None = None) -> int:
    """Replay, print the report as JSON; exit 1 when a dead letter could not be replayed."""
    import boto3  # noqa: PLC0415 - a command-line entry point, never loaded by a function

    args = parse_args(argv)
    session = boto3.session.Session(region_name=args.region)
    sqs = session.client("sqs", endpoint_url=args.endpoint_url)
    source_url, dlq_url = args.source_url, args.dlq_url
    if not (source_url and dlq_url):
        cloudformation = session.client("cloudformation", endpoint_url=args.endpoint_url)
        found = queue_urls(args.queue, stack=args.stack, sqs=sqs, cloudformation=cloudformation)
        source_url, dlq_url = source_url or found[0], dlq_url or found[1]
    replay = DeadLetterReplay(sqs, source_url=source_url, dlq_url=dlq_url)
    report = replay.run(reasons=args.reasons, max_messages=args.max_messages, dry_run=args.dry_run)
    print(json.dumps(report.to_dict(), indent=2))
    return 1 if report.count("failed") else 0


if __name__ == "__main__":
    sys.exit(main())
