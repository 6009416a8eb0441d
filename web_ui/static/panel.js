/* The simulated front panel (shown on a PC running the box simulated): lamps and buttons that
 * stand for a person at the box.  Every gesture can be made with a finger, a mouse or the
 * keyboard: hold a number = teach, tap Function = undo, hold Function 5 s = clear all, and
 * Function + a number = clear that class, also with one mouse through "Keep Function down". */
import { $, make, setText, setHidden, colourOf, clamp01, pct } from './dom.js';
import { state, update } from './store.js';
import { post, makeQueue } from './api.js';
import { holdable } from './hold.js';
import { BUTTON, LED } from './vocab.js';

const els = {
  panel: $('panel'), leds: $('panel-leds'), buttons: $('panel-buttons'), locked: $('panel-locked'),
  latchHint: $('latch-hint'), pattern: $('panel-pattern')
};
const simQueue = makeQueue();
let builtFor = '';

const PATTERN_TEXT = {
  [LED.PAIRING]: (code) => (code ? 'Lamp ' + code + ' blinks: a browser asks to unlock. Function + ' + code +
    ' lets it in: only if that browser is yours.' : 'A lamp blinks: a browser asks to unlock.'),
  [LED.COUNTDOWN]: () => 'Function held: keep holding to clear everything, let go to keep it.',
  [LED.FAULT]: () => 'The lamps blink the fault pattern: the camera is offline.'
};

/** May this browser press the simulated buttons?  (A box that does not say: yes.) */
const present = () => {
  const auth = (state.status && state.status.auth) || {};
  return auth.presence !== false;
};

const send = (which, pressed) => post('/api/sim/button', { button: which, pressed });

// -- building ---------------------------------------------------------------------------------
function lamp(i) {
  const led = make('span', { className: 'led', attrs: { 'data-led': String(i), role: 'img' }, style: { '--accent': colourOf(i) } });
  return make('div', { className: 'lamp' }, led, make('span', { className: 'lamp-label', textContent: String(i + 1) }));
}

function statusLamp() {
  return make('div', { className: 'lamp' }, make('span', { className: 'status-lamp', attrs: { role: 'img' } }),
    make('span', { className: 'lamp-label', textContent: 'Status' }));
}

function classButton(i) {
  const button = make('button', { type: 'button', className: 'btn sim-button', attrs: { 'data-button': String(i) },
    style: { '--accent': colourOf(i) } },
  make('span', { className: 'sim-text', textContent: String(i + 1) }), make('span', { className: 'sim-name' }));
  let combo = false;  // this press is Function + number (the latch was down when it began)
  holdable(button, {
    press: () => {
      combo = state.latched;
      return simQueue(async () => {
        if (combo) { await send(BUTTON.FUNCTION, true); }
        await send(i, true);
      });
    },
    release: () => simQueue(async () => {
      await send(i, false);
      if (combo) { await send(BUTTON.FUNCTION, false); }  // after a combo the box neither undoes nor clears all
    }),
    enabled: present
  });
  return button;
}

function functionButton() {
  const which = BUTTON.FUNCTION;
  const button = make('button', { type: 'button', className: 'btn sim-button sim-function', attrs: { 'data-button': which } },
    make('span', { className: 'sim-text', textContent: 'Function' }));
  holdable(button, {
    press: () => simQueue(() => send(which, true)),
    release: () => simQueue(() => send(which, false)),
    enabled: () => present() && !state.latched
  });
  button.addEventListener('click', () => { if (state.latched) { update({ latched: false }); } });
  return button;
}

function latchButton() {
  const button = make('button', { type: 'button', className: 'btn sim-latch', attrs: { 'aria-pressed': 'false' } });
  button.addEventListener('click', () => {
    if (present()) { update({ latched: !state.latched }); }
  });
  return button;
}

function build(p) {
  const lamps = p.leds.map((v, i) => lamp(i));
  if (p.status_led != null) { lamps.push(statusLamp()); }
  els.leds.replaceChildren(...lamps);
  els.buttons.replaceChildren(...p.buttons.map((v, i) => classButton(i)), functionButton(), latchButton());
}

// -- rendering --------------------------------------------------------------------------------
function renderLeds(p, classes) {
  p.leds.forEach((value, i) => {
    const led = els.leds.querySelector('.led[data-led="' + i + '"]');
    if (!led) { return; }
    const text = clamp01(value).toFixed(2);
    if (led.dataset.level !== text) {
      led.dataset.level = text;
      led.style.setProperty('--level', text);
    }
    const lit = Number(text) > 0.02;
    const name = classes[i] ? classes[i].name : 'class ' + (i + 1);
    led.setAttribute('aria-label', 'Lamp ' + (i + 1) + ' (' + name + '): ' + (lit ? pct(text) : 'off'));
    led.classList.toggle('lit', lit);
  });
  const slamp = els.leds.querySelector('.status-lamp');
  if (slamp && p.status_led != null) {
    const level = clamp01(p.status_led).toFixed(2);
    slamp.dataset.level = level;
    slamp.style.setProperty('--level', level);
    slamp.setAttribute('aria-label', 'Status lamp: ' + (Number(level) > 0.02 ? pct(level) : 'off'));
  }
}

function renderButtons(p, classes) {
  const allowed = present();
  const latched = state.latched && allowed;
  for (const button of els.buttons.querySelectorAll('.sim-button')) {
    const which = button.dataset.button;
    const isFunction = which === BUTTON.FUNCTION;
    const pressed = isFunction ? !!p[BUTTON.FUNCTION] || latched : !!p.buttons[Number(which)];
    button.classList.toggle('pressed', pressed);
    button.disabled = !allowed;
    if (isFunction) {
      button.setAttribute('aria-label', latched ? 'Panel function button (kept down: press to let go)' : 'Panel function button');
      continue;
    }
    const i = Number(which);
    const name = classes[i] ? classes[i].name : '';
    setText(button.querySelector('.sim-name'), latched ? 'clear' : name);
    button.setAttribute('aria-label', latched ? 'Function + ' + (i + 1) + ': clear ' + (name || 'class ' + (i + 1))
      : 'Panel button ' + (i + 1) + (name ? ' (' + name + ')' : ''));
  }
  const latch = els.buttons.querySelector('.sim-latch');
  latch.disabled = !allowed;
  latch.setAttribute('aria-pressed', String(latched));
  latch.classList.toggle('pressed', latched);
  setText(latch, latched ? 'Let go of Function' : 'Keep Function down');
  els.panel.classList.toggle('latched', latched);
  setHidden(els.latchHint, !latched);
  setHidden(els.locked, allowed);
}

function renderPattern(p, auth) {
  const pattern = p.pattern || '';
  els.panel.dataset.pattern = pattern;
  const text = PATTERN_TEXT[pattern] ? PATTERN_TEXT[pattern](auth.pair && auth.pair.code) : '';
  setText(els.pattern, text);
  setHidden(els.pattern, !text);
}

export function renderPanel(s) {
  const p = s.panel;
  const show = !!(s.simulated && p);
  setHidden(els.panel, !show);
  if (!show) { return; }
  if (state.latched && !present()) { state.latched = false; }
  const key = p.leds.length + '/' + p.buttons.length + '/' + (p.status_led == null ? 0 : 1);
  if (key !== builtFor) {
    build(p);
    builtFor = key;
  }
  const classes = s.classes || [];
  renderLeds(p, classes);
  renderRulePins(s.rule_pins || []);
  renderButtons(p, classes);
  renderPattern(p, s.auth || {});
}


/** The rules' output pins (mock pins off a Pi): what each does now. */
function renderRulePins(pins) {
  const list = $('panel-rule-pins');
  setHidden(list, pins.length === 0);
  const text = (pin) => {
    if (pin.mode === 'servo') { return pin.value === null ? 'servo, not moved' : 'servo at ' + pin.value + '\u00b0'; }
    if (pin.mode === 'pwm') { return 'PWM ' + Math.round((pin.value || 0) * 100) + '%'; }
    return pin.value ? 'on' : 'off';
  };
  list.replaceChildren(...pins.map((pin) => make('li', {
    className: 'rule-pin' + (pin.value ? ' rule-pin-on' : ''), attrs: { 'data-gpio': String(pin.gpio) },
    textContent: 'GPIO' + pin.gpio + ' ' + text(pin) + ' (' + pin.rules.join(', ') + ')' })));
}
