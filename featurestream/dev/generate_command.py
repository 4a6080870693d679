"""`featurestream generate`: realistic card payments into the feature group's Kafka topic or Kinesis stream.

    featurestream generate --feature-group conf/feature_groups/card_activity.yaml --events 5000 --rate 200
    featurestream generate --feature-group conf/feature_groups/card_activity.yaml --save events.jsonl
    featurestream generate --feature-group conf/feature_groups/card_activity.yaml --replay events.jsonl
    featurestream generate --feature-group conf/feature_groups/card_activity.yaml \\
        --replay events.jsonl --no-send --labels conf/training_sets/card_fraud.yaml

Events are reproducible from --seed; --save keeps the valid ones as JSON lines, --replay sends such
a file again (the same events, event times as saved). --labels also writes one fraud label per
event into the training set's PostgreSQL table, created if missing (conf/training_sets/card_labels.sql);
with --no-send nothing is produced (labels for events sent earlier).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from featurestream.config import load_feature_group, load_profile
from featurestream.config.feature_group import with_transport
from featurestream.dev.generator import GeneratorSettings, encode, generate_events, source_producer
from featurestream.errors import ConfigError

Event = dict[str, object]


def register(sub: argparse._SubParsersAction) -> Callable[[argparse.Namespace], int]:
    """The `featurestream.cli_plugins` entry point: adds `generate` to the CLI."""
    add_arguments(sub.add_parser("generate", help="produce realistic events to Kafka or Kinesis (and labels)",
                                 description=__doc__))
    return run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--feature-group", required=True, metavar="FILE",
                        help="conf/feature_groups/<name>.yaml: its source says where the events go")
    parser.add_argument("--env", default="local", metavar="PROFILE",
                        help="environment profile: a name (local, aws) or a YAML file (default: local); "
                             "gives the Kafka bootstrap servers and the region")
    parser.add_argument("--source", choices=("kafka", "kinesis"), default=None,
                        help="produce to this transport instead of the group's declared one")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--events", type=int, default=10_000, help="how many valid events to generate (default: 10000)")
    what.add_argument("--replay", type=Path, default=None, metavar="FILE",
                      help="send the events of this JSON-lines file (as --save writes it) instead of new ones")
    parser.add_argument("--entities", type=int, default=100, help="distinct cards (default: 100)")
    parser.add_argument("--rate", type=float, default=None,
                        help="records/s to produce at (default: as fast as possible)")
    parser.add_argument("--seed", type=int, default=0, help="random seed: the same seed, the same events and labels")
    parser.add_argument("--malformed-rate", type=float, default=0.0, metavar="SHARE",
                        help="share of extra broken records mixed in, for the DLQ (default: 0)")
    parser.add_argument("--save", type=Path, default=None, metavar="FILE",
                        help="also write the valid events as JSON lines here")
    parser.add_argument("--labels", default=None, metavar="TRAINING_SET",
                        help="also write one fraud label per event to this training set's PostgreSQL labels table "
                             "(e.g. conf/training_sets/card_fraud.yaml; the table is created if missing)")
    parser.add_argument("--no-send", action="store_true",
                        help="produce nothing; only --save and --labels (e.g. labels for events sent earlier: "
                             "--replay events.jsonl --no-send --labels ...)")


def read_events(path: Path) -> list[Event]:
    """The events of a JSON-lines file; a line that is not a JSON object is a ConfigError naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(path, "", f"cannot read --replay file ({exc.strerror})") from None
    events: list[Event] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(path, f"line {number}", f"not JSON: {exc.msg}") from None
        if not isinstance(event, dict):
            raise ConfigError(path, f"line {number}", "not a JSON object")
        events.append(event)
    return events


def run(args: argparse.Namespace) -> int:
    spec = load_feature_group(args.feature_group)
    if args.source:
        spec = with_transport(spec, args.source)
    profile = load_profile(args.env)
    labels_spec = None
    if args.labels:
        # Checked before anything is sent: a wrong training set must not leave half a run behind.
        from featurestream.config.training_set import load_training_set
        from featurestream.dev.labels import check_target

        labels_spec = load_training_set(args.labels)
        check_target(labels_spec, args.labels)
    # Real-time pace: event times advance as fast as records are produced.
    settings = GeneratorSettings(entities=args.entities, seed=args.seed,
                                 events_per_second=args.rate or 1000.0, malformed_rate=args.malformed_rate)
    events = read_events(args.replay) if args.replay else generate_events(args.events, settings)
    if args.save:
        args.save.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    if not args.no_send:
        send, where = source_producer(spec, profile)
        sent = send(encode(events, settings, key=spec.entity.key), args.rate)
        print(f"sent {sent} records ({len(events)} valid) to {where}")
    if labels_spec is not None:
        from featurestream.dev.labels import write_labels

        written = write_labels(labels_spec, events, args.seed, spec_file=args.labels,
                               events_source=str(args.replay or "generated events"))
        print(f"wrote {written} labels to {labels_spec.labels.table}")
    return 0
