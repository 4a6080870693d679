"""`featurestream generate`: realistic events into the feature group's Kafka topic."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from featurestream.config import load_feature_group, load_profile
from featurestream.config.feature_group import with_transport
from featurestream.dev.generator import GeneratorSettings, encode, generate_events, source_producer


def register(sub: argparse._SubParsersAction) -> Callable[[argparse.Namespace], int]:
    """The `featurestream.cli_plugins` entry point: adds `generate` to the CLI."""
    add_arguments(sub.add_parser("generate", help="produce realistic events to Kafka or Kinesis",
                                 description=__doc__))
    return run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--feature-group", required=True, metavar="FILE")
    parser.add_argument("--env", default="local", metavar="PROFILE")
    parser.add_argument("--source", choices=("kafka", "kinesis"), default=None,
                        help="produce to this transport instead of the group's declared one")
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--entities", type=int, default=100)
    parser.add_argument("--rate", type=float, default=None,
                        help="records/s to produce at (default: as fast as possible)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--malformed-rate", type=float, default=0.0)
    parser.add_argument("--save", type=Path, default=None, help="also write the valid events as JSON lines here")


def run(args: argparse.Namespace) -> int:
    spec = load_feature_group(args.feature_group)
    if args.source:
        spec = with_transport(spec, args.source)
    profile = load_profile(args.env)
    # Real-time pace: event times advance as fast as records are produced.
    settings = GeneratorSettings(entities=args.entities, seed=args.seed,
                                 events_per_second=args.rate or 1000.0, malformed_rate=args.malformed_rate)
    events = generate_events(args.events, settings)
    if args.save:
        args.save.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    send, where = source_producer(spec, profile)
    sent = send(encode(events, settings), args.rate)
    print(f"sent {sent} records ({len(events)} valid) to {where}")
    return 0
