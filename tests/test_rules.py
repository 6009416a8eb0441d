"""The rules engine: when an answer is sure enough for long enough, at most once per cooldown, until it is gone."""

from __future__ import annotations

import re

import pytest

from conftest import REPO

from device.config import ConfigError, config_from_mapping, load_config
from device.rules import END, NO_EVENTS, START, Action, Rule, RuleEngine, RuleEvent

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

NAMES = ["cat", "dog", "Class 3"]
FPS = 10


def engine(*rules, names=NAMES):
    names = list(names)
    return RuleEngine(rules, names=lambda: names), names


def run(eng, frames, start=0.0, fps=FPS):
    """Feed ``frames`` (answer, confidence) at ``fps``; returns [(t, event), ...] and the next time."""
    events, t = [], start
    for answer, confidence in frames:
        for event in eng.update(answer, None, confidence, t):
            events.append(event)
        t = round(t + 1 / fps, 6)
    return events, t


def seen(answer, seconds, confidence=0.9):
    return [(answer, confidence)] * round(seconds * FPS)


def test_a_sure_answer_held_long_enough_starts_the_rule_then_ends_it():
    eng, _ = engine(Rule("cat flap", "cat", confidence=0.8, hold=0.5, cooldown=10, until=1.0))
    events, t = run(eng, seen(1, 1) + seen(0, 2) + seen(1, 2))
    starts = [e for e in events if e.kind == START]
    ends = [e for e in events if e.kind == END]
    assert starts == [RuleEvent("cat flap", START, "cat", 0, 0.9, pytest.approx(1.5))]
    assert ends == [RuleEvent("cat flap", END, "cat", 0, 0.9, pytest.approx(4.0))]  # 1 s of dog after 3.0
    assert eng.active == ()


def test_below_the_confidence_it_never_fires():
    eng, _ = engine(Rule("r", "cat", confidence=0.8, hold=0.0))
    events, _ = run(eng, seen(0, 5, confidence=0.79))
    assert events == []
    events, _ = run(eng, seen(0, 1, confidence=0.8), start=10)
    assert [e.kind for e in events] == [START]


def test_a_flicker_shorter_than_hold_never_fires():
    eng, _ = engine(Rule("r", "cat", hold=0.5))
    flicker = (seen(0, 0.4) + seen(1, 0.1)) * 10  # 0.4 s of cat again and again, each broken by a dog frame
    events, t = run(eng, flicker)
    assert events == []
    events, _ = run(eng, seen(0, 0.6), start=t)
    assert [e.kind for e in events] == [START]


def test_cooldown_between_starts():
    eng, _ = engine(Rule("r", "cat", hold=0.0, cooldown=10, until=0.0))
    # cat, gone, cat again 2 s later: the rule ended but may not start again before 10 s from the first start
    events, t = run(eng, seen(0, 1) + seen(1, 1) + seen(0, 1) + seen(1, 1))
    assert [(e.kind, e.time) for e in events] == [(START, 0.0), (END, 1.0)]
    # still seen when the cooldown is over: it starts then
    events, _ = run(eng, seen(0, 10), start=t)
    assert [(e.kind, e.time) for e in events] == [(START, pytest.approx(10.0))]


def test_a_short_drop_does_not_end_it_until_does():
    eng, _ = engine(Rule("r", "cat", hold=0.0, until=1.0))
    events, t = run(eng, seen(0, 1) + seen(1, 0.1) + seen(0, 1) + [("unknown", 0.0)] * 9 + seen(0, 1))
    assert [e.kind for e in events] == [START]  # a frame of dog, 0.9 s of unknown: still on
    assert eng.active == ("r",)
    events, _ = run(eng, seen(0, 0.5, confidence=0.5) + seen(0, 0.6, confidence=0.5), start=t)
    assert [(e.kind, e.time) for e in events] == [(END, pytest.approx(t + 1.0))]  # less sure counts as gone
    assert events[0].confidence == 0.9  # of the last frame that matched


def test_no_events_is_the_shared_empty_tuple():
    eng, _ = engine(Rule("r", "cat"))
    assert eng.update(1, None, 0.9, 0.0) is NO_EVENTS
    assert eng.update("ok", 0, 0.9, 0.1) is NO_EVENTS  # held 0.1 s of 0.3


def test_the_answer_state_with_a_class_id_or_a_frame_results_answer():
    for answer, class_id in (("ok", 0), (0, None)):
        eng, _ = engine(Rule("r", "cat", hold=0.0))
        (event,) = eng.update(answer, class_id, 0.9, 5.0)
        assert (event.answer, event.class_id, event.time) == ("cat", 0, 5.0)


def test_unknown_and_absent_rules_ignore_confidence():
    eng, _ = engine(Rule("stranger", "unknown", hold=0.5, until=0.5), Rule("empty", "nothing", hold=1.0))
    events, t = run(eng, [("unknown", 0.0)] * 10 + [("absent", 0.0)] * 20 + [(0, 0.9)] * 20)
    assert [(e.rule, e.kind, e.answer, e.class_id, round(e.time, 3)) for e in events] == [
        ("stranger", START, "unknown", None, 0.5),
        ("stranger", END, "unknown", None, 1.5),  # 0.5 s after the first absent frame at 1.0
        ("empty", START, "absent", None, 2.0),
        ("empty", END, "absent", None, 4.0),
    ]


def test_nothing_learned_matches_no_rule():
    eng, _ = engine(Rule("a", "unknown", hold=0), Rule("b", "absent", hold=0), Rule("c", 0, hold=0, confidence=0))
    events, _ = run(eng, [("nothing-learned", 0.0)] * 20)
    assert events == []


def test_a_rule_follows_the_class_name_through_renames():
    eng, names = engine(Rule("r", "Cat ", hold=0.0, until=0.5))  # names match ignoring case and spaces
    events, t = run(eng, seen(0, 1))
    assert [(e.kind, e.class_id) for e in events] == [(START, 0)]
    names[0], names[1] = "tiger", "cat"  # class 0 is renamed: the rule no longer matches it
    events, t = run(eng, seen(0, 1), start=t)
    assert [(e.kind, e.answer, e.class_id, e.time) for e in events] == [(END, "cat", 0, pytest.approx(1.5))]
    events, _ = run(eng, seen(1, 1), start=t + 10)  # the class now called "cat"
    assert [(e.kind, e.answer, e.class_id) for e in events] == [(START, "cat", 1)]


def test_a_rule_by_id_follows_the_id():
    eng, names = engine(Rule("r", 2, hold=0.0))
    names[2] = "renamed"
    (event,) = eng.update(2, None, 0.9, 0.0)
    assert (event.answer, event.class_id) == ("renamed", 2)


def test_without_names_a_rule_by_name_never_matches():
    eng = RuleEngine([Rule("r", "cat", hold=0.0)])
    assert run(eng, seen(0, 2))[0] == []


def test_rules_are_independent_and_end_all():
    eng, _ = engine(Rule("a", "cat", hold=0.0), Rule("b", "cat", hold=0.2, confidence=0.95), Rule("c", "dog"))
    events, _ = run(eng, seen(0, 1, confidence=0.97))
    assert [(e.rule, e.time) for e in events] == [("a", 0.0), ("b", pytest.approx(0.2))]
    assert [(e.rule, e.kind, e.time) for e in eng.end_all(7.0)] == [("a", END, 7.0), ("b", END, 7.0)]
    assert eng.end_all(8.0) is NO_EVENTS


def test_two_rules_with_one_name_are_refused():
    with pytest.raises(ValueError, match="two rules"):
        RuleEngine([Rule("r", "cat"), Rule("r", "dog")])


# -- [[rules]] in the config ----------------------------------------------------------------------

EXAMPLE = """
[[rules]]
name = "cat flap"
when = "cat"
confidence = 0.8
hold = 0.5
cooldown = 10
until = 2
[[rules.then]]
gpio = 17
mode = "pulse"
ms = 500
[[rules.ended]]
gpio = 18
mode = "servo"
angle = -45

[[rules]]
name = "stranger"
when = "unknown"
[[rules.then]]
gpio = 22
mode = "on"
"""


def test_the_config_example(tmp_path):
    path = tmp_path / "teachbox.toml"
    path.write_text(EXAMPLE)
    rules = load_config(path).rules
    assert rules == (
        Rule("cat flap", "cat", 0.8, 0.5, 10.0, 2.0, then=(Action(17, "pulse", ms=500),),
             ended=(Action(18, "servo", angle=-45.0),)),
        Rule("stranger", "unknown", then=(Action(22, "on"),)),
    )
    assert (rules[1].confidence, rules[1].hold, rules[1].cooldown, rules[1].until) == (0.7, 0.3, 5.0, 1.0)
    assert config_from_mapping({}).rules == ()


def rules_error(text):
    with pytest.raises(ConfigError) as info:
        config_from_mapping(tomllib.loads(text))
    return str(info.value)


RULE = '[[rules]]\nname = "a"\nwhen = "cat"\n'
RULE2 = '[[rules]]\nname = "cat flap"\nwhen = "cat"\n'


@pytest.mark.parametrize("text, message", [
    (RULE + RULE2 + "whn = 3", '[[rules]] #2 "cat flap": unknown key \'whn\'. Did you mean \'when\'?'),
    (RULE + RULE2 + "confidence = 1.5", '[[rules]] #2 "cat flap": confidence = 1.5 must be between 0 and 1'),
    (RULE + RULE2 + 'hold = "long"', '[[rules]] #2 "cat flap": hold = \'long\' must be a number'),
    (RULE + RULE2 + "cooldown = -1", "cooldown = -1 must be between 0 and 86400"),
    (RULE + RULE2 + "until = true", "until = True must be a number"),
    (RULE + RULE2.replace("cat flap", "a"), '[[rules]] #2 "a": the name is taken by [[rules]] #1'),
    ('[[rules]]\nwhen = "cat"', "[[rules]] #1 needs name"),
    ('[[rules]]\nname = "a"', '[[rules]] #1 "a": needs when'),
    ('[[rules]]\nname = "a"\nwhen = 1.5', "when = 1.5 must be a class name or number"),
    ('[[rules]]\nname = "a"\nwhen = 99', "when = 99 must be between 0 and 63"),
    ('[[rules]]\nname = "a"\nwhen = "nothing-learned"', 'did you mean "absent"'),
    ('[[rules]]\nname = "a"\nwhen = "unknown"\nconfidence = 0.9', "confidence is for a class"),
    ("rules = 3", "rules must be [[rules]] tables"),
    ("[rules]\nname = 'a'", "rules must be [[rules]] tables"),
    (RULE + "then = 3", '"a": then must be [[rules.then]] tables'),
    (RULE + "[[rules.then]]\ngpio = 17", '[[rules]] #1 "a": [[rules.then]] #1 needs mode'),
    (RULE + "[[rules.then]]\nmode = 'on'", "[[rules.then]] #1 needs gpio"),
    (RULE + "[[rules.then]]\ngpio = 17\nmode = 'blink'", "mode = 'blink' must be one of on, pulse, servo, pwm"),
    (RULE + "[[rules.then]]\ngpio = 17\nmode = 'on'\npin = 3", "unknown key 'pin'. Did you mean 'gpio'"),
    (RULE + "[[rules.then]]\ngpio = 17\nmode = 'on'\nmod = 3", "unknown key 'mod'. Did you mean 'mode'?"),
    (RULE + "[[rules.then]]\ngpio = 28\nmode = 'on'", "gpio = 28 must be between 0 and 27"),
    (RULE + "[[rules.then]]\ngpio = 1\nmode = 'on'", "GPIO1 is the HAT EEPROM's"),
    (RULE + "[[rules.then]]\ngpio = '17'\nmode = 'on'", "gpio = '17' must be an integer"),
    (RULE + "[[rules.ended]]\ngpio = 17\nmode = 'on'\nms = 3", "[[rules.ended]] #1 ms is for mode = 'pulse', not 'on'"),
    (RULE + "[[rules.then]]\ngpio = 17\nmode = 'pulse'\nms = 0", "ms = 0 must be between 1 and 600000"),
    (RULE + "[[rules.then]]\ngpio = 17\nmode = 'servo'", "mode = 'servo' needs angle"),
    (RULE + "[[rules.then]]\ngpio = 17\nmode = 'servo'\nangle = 91", "angle = 91 must be between -90 and 90"),
    (RULE + "[[rules.then]]\ngpio = 17\nmode = 'pwm'\nvalue = 2", "value = 2 must be between 0 and 1"),
    (RULE + "[[rules.then]]\ngpio = 26\nmode = 'on'", '"a": GPIO26 is the panel\'s function_button'),
    (RULE + "[[rules.then]]\ngpio = 5\nmode = 'on'", "GPIO5 is the panel's class_buttons[0]"),
    ("[panel]\nstatus_led = 4\n" + RULE + "[[rules.then]]\ngpio = 4\nmode = 'on'", "panel's status_led"),
    (RULE + "[[rules.then]]\ngpio = 17\nmode = 'on'\n" + RULE2 + "[[rules.then]]\ngpio = 17\nmode = 'pulse'",
     '[[rules]] #2 "cat flap": GPIO17 is mode = \'pulse\' here but \'on\' in [[rules]] #1 "a"'),
    (RULE + "[[rules.then]]\ngpio = 17\nmode = 'on'\n[[rules.ended]]\ngpio = 17\nmode = 'pwm'\nvalue = 1",
     "GPIO17 is mode = 'pwm' here but 'on'"),
    ("[[rulez]]\nname = 'a'", "unknown section 'rulez'. Did you mean 'rules'?"),
])
def test_config_errors_name_the_rule(text, message):
    assert message in rules_error(text)


def test_a_pin_shared_with_one_mode_is_fine_and_the_panel_is_checked_when_overridden():
    config = config_from_mapping(tomllib.loads(
        RULE + "[[rules.then]]\ngpio = 17\nmode = 'on'\n" + RULE2 + "[[rules.then]]\ngpio = 17\nmode = 'on'"))
    assert [rule.then[0].gpio for rule in config.rules] == [17, 17]
    with pytest.raises(ConfigError, match="GPIO17 is the panel's status_led"):
        config.override("panel", status_led=17)


def test_the_readmes_rules_example_loads():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Rules", 1)[1]
    example = re.search(r"```toml\n(.*?)```", section, re.S).group(1)
    (rule,) = config_from_mapping(tomllib.loads(example)).rules
    assert (rule.name, rule.when, rule.confidence, rule.hold, rule.cooldown, rule.until) == \
        ("cat flap", "cat", 0.8, 0.5, 10.0, 2.0)
    assert rule.then == (Action(17, "pulse", ms=500),) and rule.ended == (Action(18, "servo", angle=-90.0),)


# -- the debounced answer (no rule): what MQTT, webhooks and the log report ----------------------

def answer_events(frames, **options):
    """``frames``: (answer, confidence, seconds) runs at 10 frames/s; the events as (kind, answer, time)."""
    from device.rules import AnswerEvents
    tracker = AnswerEvents(names=lambda: ["cat", "dog"], **options)
    out, t = [], 0.0
    for answer, confidence, seconds in frames:
        for _ in range(round(seconds * 10)):
            for e in tracker.update(answer, None, confidence, t):
                assert e.rule == ""
                out.append((e.kind, e.answer, round(e.time, 3)))
            t = round(t + 0.1, 6)
    return out, tracker


def test_an_answer_starts_once_settled_and_the_next_one_ends_it():
    events, tracker = answer_events([(0, 0.9, 1.0), (1, 0.9, 0.2), (0, 0.9, 0.5), (1, 0.9, 1.0)],
                                    hold=0.5, until=1.0)
    # cat settles at 0.5 s; a 0.2 s glimpse of dog changes nothing; dog settles 0.5 s after it began
    assert events == [("start", "cat", 0.5), ("end", "cat", 2.2), ("start", "dog", 2.2)]
    assert tracker.current == "dog"


def test_an_unsure_answer_ends_it_after_until_and_unknown_and_absent_are_answers_too():
    events, tracker = answer_events([(0, 0.9, 0.6), (0, 0.3, 1.5), ("absent", 0.0, 0.6), ("unknown", 0.0, 0.6),
                                     ("nothing-learned", 0.0, 2.0)], hold=0.25, until=0.95, confidence=0.6)
    # unsure from 0.6 s: cat ends 0.95 s later; unknown replaces absent once settled (0.25 s after 2.7 s);
    # nothing learned is no answer: unknown ends 0.95 s after it
    assert events == [("start", "cat", 0.3), ("end", "cat", 1.6), ("start", "absent", 2.4),
                      ("end", "absent", 3.0), ("start", "unknown", 3.0), ("end", "unknown", 4.3)]
    assert tracker.current is None
    assert tracker.end_all(9.0) == ()
