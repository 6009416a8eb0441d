/* The class cards: name (tap to rename), examples, confidence bar, Hold to teach, Clear. */
import { $, make, setText, colourOf, clamp01, pct, examples } from './dom.js';
import { state, className } from './store.js';
import { post, makeQueue } from './api.js';
import { holdable } from './hold.js';
import { showBanner, reportError } from './banner.js';
import { ANSWER, CAMERA } from './vocab.js';

export const MAX_NAME = 32;  // the box refuses longer class names
const list = $('classes');
const teachQueue = makeQueue();
let builtFor = -1;  // number of classes the cards were built for

// -- building ---------------------------------------------------------------------------
function teachButton(i) {
  const teach = make('button', { type: 'button', className: 'btn teach', textContent: 'Hold to teach', disabled: true });
  holdable(teach, {
    press: () => teachQueue(() => post('/api/teach/start', { class: i })),
    keepAlive: () => post('/api/teach/start', { class: i, keep: true }),
    release: () => teachQueue(() => post('/api/teach/stop', { class: i })),
    enabled: () => state.unlocked,
    onChange: (held) => setText(teach, held ? 'Teaching\u2026' : 'Hold to teach')
  });
  return teach;
}

function buildCard(i) {
  const name = make('button', { type: 'button', className: 'name', title: 'Tap to rename' });
  name.addEventListener('click', () => startRename(i));
  const clear = make('button', { type: 'button', className: 'btn clear', textContent: 'Clear', disabled: true });
  clear.addEventListener('click', () => clearClass(i));
  const track = make('div', {
    className: 'bar-track',
    attrs: { role: 'meter', 'aria-valuemin': '0', 'aria-valuemax': '100' }
  }, make('div', { className: 'bar' }));
  return make('li', { className: 'class-card', attrs: { 'data-class': String(i) }, style: { '--accent': colourOf(i) } },
    make('div', { className: 'class-head' },
      make('span', { className: 'class-number', textContent: String(i + 1), attrs: { 'aria-hidden': 'true' } }),
      name,
      make('span', { className: 'seeing', textContent: 'sees this' })),
    make('div', { className: 'class-meta' },
      make('span', { className: 'count' }), make('span', { className: 'class-confidence' })),
    track,
    make('div', { className: 'class-buttons' }, teachButton(i), clear));
}

// -- rendering --------------------------------------------------------------------------
function renderCard(card, c, i, s) {
  const unlocked = state.unlocked;
  const answered = s.state === ANSWER.OK && s.answer_id === i && (s.camera || {}).state !== CAMERA.OFFLINE;
  card.classList.toggle('answered', answered);
  setText(card.querySelector('.seeing'), s.sure === false ? 'maybe' : 'sees this');
  card.classList.toggle('teaching', s.teaching === i);
  card.classList.toggle('empty', !c.examples);
  const nameEl = card.querySelector('.name');
  if (!card.classList.contains('renaming')) {
    setText(nameEl, c.name);
    nameEl.disabled = !unlocked;
    nameEl.setAttribute('aria-label', c.name + (unlocked ? ' (tap to rename)' : ''));
  }
  const n = Number(c.examples) || 0;
  setText(card.querySelector('.count'), examples(n));
  const confidence = clamp01(c.confidence);
  const bar = card.querySelector('.bar');
  const width = (confidence * 100).toFixed(1) + '%';
  if (bar.style.width !== width) { bar.style.width = width; }
  const track = card.querySelector('.bar-track');
  track.setAttribute('aria-valuenow', String(Math.round(confidence * 100)));
  track.setAttribute('aria-label', 'Confidence for ' + c.name + ': ' + pct(confidence));
  setText(card.querySelector('.class-confidence'), n ? pct(confidence) : '');
  const teach = card.querySelector('.teach');
  teach.disabled = !unlocked;
  if (!teach.classList.contains('held')) {
    setText(teach, s.teaching === i ? 'Teaching\u2026' : 'Hold to teach');
  }
  teach.setAttribute('aria-label', 'Hold to teach ' + c.name);
  const clear = card.querySelector('.clear');
  clear.disabled = !unlocked || !n;
  clear.setAttribute('aria-label', 'Clear ' + c.name);
}

export function renderClasses(s) {
  const classes = s.classes || [];
  if (classes.length !== builtFor) {
    list.replaceChildren(...classes.map((c, i) => buildCard(i)));
    builtFor = classes.length;
  }
  classes.forEach((c, i) => renderCard(list.children[i], c, i, s));
}

// -- clearing -----------------------------------------------------------------------------
async function clearClass(i) {
  if (!state.unlocked) { return; }
  const c = state.status.classes[i] || {};
  const n = Number(c.examples) || 0;
  const what = n === 1 ? 'the 1 example' : 'all ' + n + ' examples';
  if (!window.confirm('Forget ' + what + ' of \u201c' + className(i) + '\u201d? Its name stays.')) { return; }
  try {
    const result = await post('/api/clear', { class: i });
    showBanner('Cleared \u201c' + className(i) + '\u201d (' + examples(result.forgotten) + ' forgotten).', 'info');
  } catch (error) {
    reportError(error);
  }
}

// -- renaming -------------------------------------------------------------------------------
/** Length as the box counts it: characters (code points) after trimming. */
export const nameLength = (value) => [...value.normalize('NFC').trim()].length;

function nameEditor(i, old) {
  const input = make('input', {
    type: 'text', className: 'name-input', value: old, autocomplete: 'off',
    attrs: { 'aria-label': 'New name for class ' + (i + 1), enterkeyhint: 'done', 'aria-describedby': 'name-help-' + i }
  });
  const count = make('span', { className: 'name-count' });
  const message = make('span', { className: 'name-error', attrs: { 'aria-live': 'polite' } });
  const help = make('p', { className: 'name-help', id: 'name-help-' + i }, message, count);
  const check = () => {
    const n = nameLength(input.value);
    const tooLong = n > MAX_NAME;
    setText(count, n + '/' + MAX_NAME);
    setText(message, n >= MAX_NAME ? 'at most ' + MAX_NAME + ' characters' +
      (tooLong ? ': ' + (n - MAX_NAME) + ' too many' : '') : '');
    help.classList.toggle('too-long', tooLong);
    help.classList.toggle('at-limit', n >= MAX_NAME);
    input.setAttribute('aria-invalid', tooLong ? 'true' : 'false');
    return !tooLong;
  };
  input.addEventListener('input', check);
  check();
  return { input, help, check };
}

function startRename(i) {
  if (!state.unlocked) { return; }
  const card = list.querySelector('.class-card[data-class="' + i + '"]');
  if (!card || card.classList.contains('renaming')) { return; }
  const nameEl = card.querySelector('.name');
  const old = className(i);
  const editor = nameEditor(i, old);
  card.classList.add('renaming');
  nameEl.hidden = true;
  nameEl.after(editor.input);
  card.querySelector('.class-head').after(editor.help);
  editor.input.focus();
  editor.input.select();

  let finished = false;
  async function finish(save) {
    if (finished) { return; }
    const value = editor.input.value.trim();
    const fits = editor.check();
    if (save && !fits && document.activeElement === editor.input) {
      return;  // Enter on a name that is too long: keep editing; the message says why
    }
    finished = true;
    editor.input.remove();
    editor.help.remove();
    nameEl.hidden = false;
    card.classList.remove('renaming');
    if (save && !fits) {
      showBanner('Not renamed: a class name has at most ' + MAX_NAME + ' characters (this one had ' +
        nameLength(value) + ').', 'error');
      return;
    }
    if (!save || value === old) {
      nameEl.focus();
      return;
    }
    setText(nameEl, value);  // shown at once; the next status confirms (or the banner explains)
    try {
      await post('/api/rename', { class: i, name: value });
      nameEl.focus();
    } catch (error) {
      setText(nameEl, old);
      reportError(error);
    }
  }
  editor.input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') {
      event.preventDefault();
      finish(true);
    } else if (event.key === 'Escape') {
      event.preventDefault();
      finish(false);
    }
  });
  editor.input.addEventListener('blur', () => finish(true));
}
