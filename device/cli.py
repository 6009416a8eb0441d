"""The ``teachbox`` command: run, eval, info, fetch-model, default-config."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import List, Optional

from . import __version__
from .camera import camera_specs_help
from .config import Config, load_config, render_defaults
from .atomic import atomic_file
from .errors import ConfigError, ModelError, ModelMissingError, StateError, TeachboxError
from .mdns import avahi_service
from .models import DEFAULT_MODEL, LANDMARK_SOURCES, MIRROR_ENV, MODELS, fetch_hint
from .sources import SOURCES

log = logging.getLogger("teachbox")
CONFIG_ENV = "TEACHBOX_CONFIG"


class _OutputClosed(Exception):
    """Whoever reads our stdout has gone (``teachbox default-config | head -1``)."""


def _out(text: str) -> None:
    """Print the command's output (to stdout, flushed now, so a closed pipe shows up here)."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        raise _OutputClosed from None


def _end_quietly() -> int:
    """Stop as a filter does when its reader has gone: no message, the status of SIGPIPE."""
    try:  # what is still buffered for stdout must not fail again when Python exits
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
    return 128 + signal.SIGPIPE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="teachbox", description="A box you teach to recognise things.")
    parser.add_argument("--version", action="version", version=f"teachbox {__version__}")
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"), help="override [log] level")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(sub):
        sub.add_argument("--config", type=Path, help=f"TOML config file (default: ${CONFIG_ENV} if set)")
        sub.add_argument("--model", help="model file (overrides [model] path)")
        sub.add_argument("--model-dir", help="model folder (overrides [model] dir)")
        sub.add_argument("--threads", type=int, help="interpreter threads, 0 = all cores")
        return sub

    run = with_config(commands.add_parser("run", help="run the appliance"))
    run.add_argument("--camera", metavar="SPEC", help=f"camera (overrides [camera] source): {camera_specs_help()}")
    run.add_argument("--state-dir", help="folder of the learned state (overrides [storage] state_dir)")
    run.add_argument("--source", choices=SOURCES,
                     help="what the box looks at (overrides [source] kind): picture (the whole frame), hand "
                          "(hand signs), face (expressions) or pose (body poses); each keeps its own classes")
    run.add_argument("--simulate", action="store_true", help="simulated hardware (no Pi camera or GPIO needed)")
    run.add_argument("--host", help="address of the phone page (overrides [web] host; default all interfaces)")
    run.add_argument("--port", type=int, help="port of the phone page (overrides [web] port; default 8000)")

    ev = with_config(commands.add_parser("eval", help="few-shot accuracy on a class-per-folder data set"))
    ev.add_argument("--data", required=True, type=Path, help="folder with one sub-folder of images per class")
    ev.add_argument("--shots", required=True, type=int, help="examples taught per class")
    ev.add_argument("--ways", type=int, help="classes per split (default: all)")
    ev.add_argument("--source", choices=SOURCES, default="picture",
                    help="the features evaluated: picture (the whole frame, the default), hand, face or pose "
                         "(landmarks; an image where none is found counts as a wrong answer)")
    ev.add_argument("--protocol", choices=("random", "arc", "person"), default="random",
                    help="random (the default): examples drawn from all of a class's images; arc: consecutive "
                         "images; person: taught from some people, asked only about the others. random and arc "
                         "mix the same person into teaching and asking, which rewards recognising the person "
                         "instead of the expression or gesture")
    ev.add_argument("--person-pattern", metavar="REGEX",
                    help="with --protocol person: the person id in a file name is this regular expression's "
                         "first group, or its whole match (default: the part before the first _ or -, "
                         "s03_happy.png -> s03)")
    ev.add_argument("--teach-people", type=int, metavar="N",
                    help="with --protocol person: people taught from per split (default: half)")
    ev.add_argument("--splits", type=int, default=10)
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--unknown-classes", type=int, default=0, metavar="K",
                    help="K more classes per split never taught, asked too: right only when answered unknown")
    ev.add_argument("--head", choices=("centroid", "metric", "knn"), default="metric",
                    help="the head taught: metric (the default), centroid (the live head) or knn "
                         "(see the README's Heads)")
    ev.add_argument("--json", action="store_true", help="print one JSON object")

    info = with_config(commands.add_parser("info", help="runtime, model, threads and paths"))
    info.add_argument("--json", action="store_true")

    fetch = commands.add_parser(
        "fetch-model", help="put model files into the model folder (sha256 checked)",
        description="Put model files into the model folder, sha256 checked; nothing is installed on a mismatch. "
                    f"Without --name or --source: the default model, {DEFAULT_MODEL}. The hand, face and pose "
                    "landmark files come from the mediapipe 0.10.14 wheel on PyPI (downloaded once, sha256 "
                    "checked, the files read out of it) or from a mirror folder.")
    fetch.add_argument("--config", type=Path)
    fetch.add_argument("--model-dir", help="target folder (default: [model] dir)")
    fetch.add_argument("--name", action="append", choices=sorted(MODELS), metavar="FILE",
                       help="a model file to fetch (repeatable), one of: " + ", ".join(sorted(MODELS)))
    fetch.add_argument("--source", action="append", choices=LANDMARK_SOURCES + ("all",),
                       help="fetch every landmark file of this source (repeatable; all: hand, face and pose)")
    fetch.add_argument("--mirror", type=Path, help=f"copy from this folder instead of downloading (or ${MIRROR_ENV})")
    fetch.add_argument("--force", action="store_true", help="fetch again even if a good copy is there")

    examples = with_config(commands.add_parser("examples", help="the stored examples: per-class counts and size"))
    examples.add_argument("--state-dir", help="folder of the learned state (overrides [storage] state_dir)")
    examples.add_argument("--json", action="store_true", help="print one JSON object")

    export = with_config(commands.add_parser("export", help="write every stored example to one file"))
    export.add_argument("--state-dir", help="folder of the learned state (overrides [storage] state_dir)")
    export.add_argument("-o", "--output", type=Path, default=Path("teachbox-examples.zip"),
                        help="the file to write (default: teachbox-examples.zip; - for stdout)")

    imp = with_config(commands.add_parser("import", help="replace every stored example by an export file's "
                                                         "(with the service stopped)"))
    imp.add_argument("file", type=Path, help="a file from teachbox export or the page's Export")
    imp.add_argument("--state-dir", help="folder of the learned state (overrides [storage] state_dir)")

    bench = with_config(commands.add_parser("bench", help="the loop measured against the model's own speed, "
                                                          "memory, start-up, the heads and the page's load"))
    bench.add_argument("--source", choices=SOURCES, default="picture", help="what the box looks at")
    bench.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    bench.add_argument("--quick", action="store_true", help="leave out the start-up and the heads")
    commands.add_parser("default-config", help="print a config file with every key and its default")
    with_config(commands.add_parser("mdns-service", help="print the avahi service file that announces the page "
                                                         "under [box] name (the installer writes it)"))
    return parser


def _config_path(args) -> Optional[Path]:
    return getattr(args, "config", None) or (Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None)


def _config(args) -> Config:
    config = load_config(_config_path(args))
    config = config.override("model", path=getattr(args, "model", None), dir=getattr(args, "model_dir", None),
                             threads=getattr(args, "threads", None))
    config = config.override("camera", source=getattr(args, "camera", None))
    config = config.override("storage", state_dir=getattr(args, "state_dir", None))
    if args.command == "run":
        config = config.override("source", kind=getattr(args, "source", None))
    config = config.override("web", host=getattr(args, "host", None), port=getattr(args, "port", None))
    return config.override("log", level=args.log_level)


def _run(args, config: Config) -> int:
    from .app import build_box
    from .notify import Notifier

    stopping = threading.Event()
    box = None

    def stop(signum, _frame):
        log.info("%s received: stopping", signal.Signals(signum).name)
        stopping.set()
        if box is not None:
            box.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sock = _page_socket(config) if config.web.enabled else None  # a busy port is said before the model loads
    while True:
        try:
            box = build_box(config, simulate=args.simulate)
            break
        except ModelError as exc:
            # As a service, a box without a usable model says so on its LEDs and waits
            # for `teachbox fetch-model`; on a terminal the message is enough.
            if not Notifier().enabled:
                raise
            from .fault import wait_for_model

            if not wait_for_model(config, exc, stopping, simulate=args.simulate):
                return 2
    if stopping.is_set():
        box.stop()
    page = None
    if sock is not None:
        from web_ui.server import PageServer

        page = PageServer(box, config, sock=sock)
        page.start()
    try:
        box.run()
    finally:
        if page is not None:
            page.close()
        stored = box.close()
    if not stored:
        log.error("stopped, but some examples taught last could not be written to %s (see above)",
                  config.state_dir)
        return 1
    log.info("stopped; every example taught is stored in %s", config.state_dir)
    return 0


def _page_socket(config: Config):
    from web_ui.server import bind_page_socket

    try:
        return bind_page_socket(config.web.host, config.web.port)
    except OSError as exc:
        raise ConfigError(f"the phone page cannot listen on {config.web.host}:{config.web.port} "
                          f"({exc.strerror or exc}); is teachbox already running? Change [web] port "
                          "or use --port") from None


def _open_source(name: str, config: Config):
    from .sources import open_source

    return open_source(name, picture_model=config.model_path, model_dirs=config.model_dirs,
                       num_threads=config.threads, lite=config.source.lite)


def _eval(args, config: Config) -> int:
    from .evaluate import evaluate

    source = _open_source(args.source, config)
    result = evaluate(source, args.data, shots=args.shots, ways=args.ways, protocol=args.protocol,
                      splits=args.splits, seed=args.seed, head=args.head, unknown_classes=args.unknown_classes,
                      person_pattern=args.person_pattern, teach_people=args.teach_people)
    if args.json:
        _out(json.dumps(result))
        return 0
    people = f"{result['people']} people, " if "people" in result else ""
    detected = "-" if result["accuracy_detected"] is None else f"{result['accuracy_detected']:.4f}"
    fps = "-" if result["fps"] is None else result["fps"]
    _out(f"accuracy {result['accuracy']:.4f} +/- {result['accuracy_std']:.4f}  "
         f"({result['shots']}-shot, {result['ways']}-way, {result['protocol']}, {result['head']} head, "
         f"{result['splits']} splits, {people}{result['queries']} queries, {result['source']} source, "
         f"{result['model']}, {result['seconds']} s)  no detection {result['no_detection_rate']:.1%} "
         f"of {result['images']} images, accuracy where found {detected}, {fps} images/s")
    if result["classes_untaught"]:
        _out("not taught in some splits (no image to teach from): "
             + ", ".join(f"{name} ({count})" for name, count in result["classes_untaught"].items()))
    return 0


def _info(args, config: Config) -> int:
    from .embedder import Embedder

    facts = {"version": __version__, "python": sys.version.split()[0], "model_dir": str(config.model_dir),
             "state_dir": str(config.state_dir), "config": str(_config_path(args) or "")}
    problem = None
    try:
        facts.update(Embedder(config.model_path, num_threads=config.threads).describe())
    except TeachboxError as exc:
        problem = facts["model_error"] = _model_problem(config, exc)
    from .app import chosen_source

    facts["source"] = chosen_source(config)  # what the box looks at ([source] kind, else the phone's choice)
    if args.json:
        _out(json.dumps(facts, indent=2))
    else:
        _out("\n".join(f"{key:16} {value}" for key, value in facts.items()))
    if problem:  # the facts are printed, but a box that cannot run is not "ok"
        log.error("%s", problem)
        return 2
    return 0


def _fetch(args, config: Config) -> int:
    from .models import fetch_models, landmark_models

    names = list(args.name or [])
    for source in args.source or []:
        names += landmark_models(source)
    paths = fetch_models(config.model_dir, names or [DEFAULT_MODEL], mirror=args.mirror, force=args.force)
    _out("\n".join(map(str, paths)))
    return 0


def _examples(args, config: Config) -> int:
    from .library import ExampleLibrary

    if not (config.state_dir / "examples.db").exists():
        raise ConfigError(f"no examples are stored in {config.state_dir} yet (or use --state-dir)")
    library = ExampleLibrary(config.state_dir, exclusive=False)
    try:
        names, counts = library.names(), library.counts()
        seeds = {}
        for class_id, _, _, count in library.all_seeds():
            seeds[class_id] = seeds.get(class_id, 0) + count
        classes = sorted(set(names) | set(counts) | set(seeds))
        facts = {"state_dir": str(config.state_dir), "examples": sum(counts.values()), "bytes": library.size_bytes(),
                 "max_bytes": library.caps.total_bytes,
                 "classes": [{"class": c + 1, "name": names.get(c, f"Class {c + 1}"), "examples": counts.get(c, 0),
                              "carried_over": seeds.get(c, 0)} for c in classes],
                 "models": [{"sha256": sha, "examples": n} for sha, n in sorted(library.models().items())]}
    finally:
        library.close()
    if args.json:
        _out(json.dumps(facts, indent=2))
        return 0
    lines = [f"{c['class']:>3}  {c['name']:<24} {c['examples']:>6} examples"
             + (f" (+{c['carried_over']} carried over from head.npz)" if c["carried_over"] else "")
             for c in facts["classes"]]
    lines.append(f"     {facts['examples']} examples, {facts['bytes'] / (1 << 20):.1f} MB of "
                 f"{facts['max_bytes'] / (1 << 20):.0f} MB, in {facts['state_dir']}")
    _out("\n".join(lines))
    return 0


def _identity(config: Config):
    from .embedder import Embedder
    from .storage import model_identity

    return model_identity(Embedder(config.model_path, num_threads=1).describe())


def _export(args, config: Config) -> int:
    from .exchange import encode_export
    from .learned import export_contents
    from .library import ExampleLibrary

    if not (config.state_dir / "examples.db").exists():
        raise ConfigError(f"no examples are stored in {config.state_dir} yet (or use --state-dir)")
    model = _identity(config)
    library = ExampleLibrary(config.state_dir, exclusive=False)
    try:
        contents = export_contents(library, model)
    finally:
        library.close()
    data = encode_export(contents)
    if str(args.output) == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        with atomic_file(args.output, mode=0o600) as handle:  # it holds pictures taken at home
            handle.write(data)
        log.info("wrote %d examples (%.1f MB) to %s", len(contents.examples), len(data) / (1 << 20), args.output)
    return 0


def _import(args, config: Config) -> int:
    from .box import ImportRefused
    from .exchange import decode_export, looks_like_export
    from .library import ExampleLibrary, NewExample
    from .storage import decode_head

    data = args.file.read_bytes() if args.file.stat().st_size <= 1 << 30 else b""
    if not data:
        raise ConfigError(f"{args.file} is empty or larger than 1 GB: it is not a teachbox export")
    model = _identity(config)
    library = ExampleLibrary(config.state_dir)  # refused while the service runs
    try:
        if looks_like_export(data):
            contents = decode_export(data)
            same = contents.model.sha256 == model.sha256
            examples = [NewExample(e.class_id, e.vector if same else None, e.crop, e.source, e.taken)
                        for e in contents.examples if (same and e.vector is not None) or e.crop is not None]
            library.replace_all(contents.names, examples, model=contents.model.sha256, seeds=contents.seeds)
            note = "" if same else f" (made with {contents.model.name}: teachbox embeds them with its model at start)"
            log.info("imported %d examples into %s%s", len(examples), config.state_dir, note)
        else:
            try:
                head = decode_head(data, model)
            except StateError as exc:
                raise ImportRefused(f"{args.file} cannot be imported: {exc}. Nothing was changed.") from None
            _, arrays = head.to_state()
            seeds = {c: (arrays["sums"][c], int(n)) for c, n in enumerate(arrays["counts"]) if n > 0}
            library.replace_all(dict(enumerate(head.names)), [], model=None, seeds=seeds, seed_model=model.sha256)
            log.info("imported %d examples (a head.npz export) into %s", head.total, config.state_dir)
    finally:
        library.close()
    return 0


def _bench(args, config: Config) -> int:
    from .benchmark import render, run_bench

    config = config.override("source", kind=args.source)
    if not log.isEnabledFor(logging.DEBUG):  # the box built and run here says what it does at start: not wanted
        for name in ("device", "web_ui", "waitress"):
            logging.getLogger(name).setLevel(logging.WARNING)
        logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # ten clients queue on purpose
    source = _open_source(args.source, config)
    result = run_bench(config, source, source_name=args.source, heads=not args.quick, start=not args.quick)
    _out(json.dumps(result, indent=2) if args.json else render(result))
    return 0


def _dispatch(args) -> int:
    if args.command == "default-config":
        _out(render_defaults())
        return 0
    config = _config(args)
    logging.getLogger().setLevel(config.log.level.upper())
    if args.command == "mdns-service":
        if not config.web.enabled or config.web.port == 0:
            raise ConfigError("the page is off or on a random port ([web] enabled / port): nothing to announce")
        _out(avahi_service(config.box_name, config.web.port))
        return 0
    handler = {"run": _run, "eval": _eval, "info": _info, "fetch-model": _fetch, "examples": _examples,
               "export": _export, "import": _import, "bench": _bench}[args.command]
    try:
        return handler(args, config)
    except ModelMissingError as exc:
        if args.command == "fetch-model":  # about a mirror, not about the model folders
            raise
        raise ModelMissingError(_model_problem(config, exc)) from None


def _model_problem(config: Config, exc: TeachboxError) -> str:
    """The model error; for a missing model that was looked for in several folders, all of them."""
    folders = config.model_dirs
    if not isinstance(exc, ModelMissingError) or config.model.path or len(folders) < 2:
        return str(exc)  # it names the one file or folder there is
    looked = " nor in ".join(repr(str(folder)) for folder in folders)
    return f"the model {DEFAULT_MODEL} is neither in {looked}. {fetch_hint(config.model_path)}"


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    try:
        return _dispatch(args)
    except _OutputClosed:
        return _end_quietly()
    except TeachboxError as exc:
        log.error("%s", exc)
        return 2
    except OSError as exc:  # a file or folder the user named cannot be used
        log.error("%s%s", exc.strerror or exc, f": {exc.filename}" if exc.filename else "")
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
