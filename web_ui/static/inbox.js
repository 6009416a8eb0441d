/* The unsure pictures: frames the box kept because it could not tell two classes apart (or knew
 * neither), each saying how long ago it was.  One tap on a class teaches that class the picture
 * the box kept (nothing new is captured); "Throw away" drops one that shows none of them. */
import { $, make, setText, setHidden, colourOf } from './dom.js';
import { state, update, className } from './store.js';
import { request, post } from './api.js';
import { showBanner, reportError } from './banner.js';
import { REASON } from './vocab.js';

const ALL_BUTTONS_UP_TO = 6;  // classes: a button for each; with more, the two guesses and a list

const els = { list: $('inbox-list'), empty: $('inbox-empty'), waiting: $('inbox-waiting') };
const view = { key: '', loading: false, frames: [], shownFor: '', loadedAt: 0 };
const itemsById = new Map();  // frame id -> its <li>: kept across reloads, so nothing is redrawn under a finger
let itemsFor = '';  // the class names the items were made with

function keyFor(s) {
  const doubtful = s.doubtful || {};
  return doubtful.count + ':' + doubtful.newest + '|' + (s.classes || []).map((c) => c.name).join('\u0000');
}

async function load(s) {
  view.key = keyFor(s);
  view.loading = true;
  try {
    const data = await request('GET', '/api/doubtful');
    view.frames = data.frames || [];
    view.loadedAt = Date.now();
  } catch (error) {
    view.key = '';
    if (error.status !== 401) { reportError(error); }
  } finally {
    view.loading = false;
  }
  draw();
}

// -- drawing ------------------------------------------------------------------------------------
/** "just now", "40 s ago", "2 min ago", "3 h ago", "2 days ago". */
export function agoText(seconds) {
  const s = Math.max(0, Math.floor(Number(seconds) || 0));
  if (s < 10) { return 'just now'; }
  if (s < 60) { return s + ' s ago'; }
  if (s < 3600) { return Math.floor(s / 60) + ' min ago'; }
  if (s < 2 * 86400) { return Math.floor(s / 3600) + ' h ago'; }
  return Math.floor(s / 86400) + ' days ago';
}

function ageOf(frame) {
  return (Number(frame.age_s) || 0) + (Date.now() - view.loadedAt) / 1000;
}

function renderAges() {
  for (const frame of view.frames) {
    const li = itemsById.get(frame.id);
    const el = li && li.querySelector('.doubt-age');
    if (el) { setText(el, agoText(ageOf(frame))); }
  }
}

function question(frame) {
  const best = '\u201c' + className(frame.best) + '\u201d';
  const named = frame.reason === REASON.CLOSE || frame.reason === REASON.UNSURE;
  if (named && frame.runner_up !== null && frame.runner_up !== undefined) {
    return best + ' or \u201c' + className(frame.runner_up) + '\u201d?';
  }
  if (named) { return best + '? (it was not sure)'; }
  return 'Not like anything it was taught (closest: ' + best + ').';
}

function fileButton(frame, i) {
  const guess = i === frame.best || i === frame.runner_up;
  const button = make('button', { type: 'button', className: 'btn file-as' + (guess ? ' guess' : ''),
    style: { '--accent': colourOf(i) }, attrs: { 'data-class': String(i), 'aria-label': 'File as ' + className(i) } },
  make('span', { className: 'chip-number', textContent: String(i + 1), attrs: { 'aria-hidden': 'true' } }),
  make('span', { className: 'chip-name', textContent: className(i) }));
  button.addEventListener('click', () => file(frame, i, button.closest('.doubt')));
  return button;
}

function otherClass(frame, classes) {
  const select = make('select', { className: 'file-other', attrs: { 'aria-label': 'File as another class' } },
    new Option('another class\u2026', ''),
    ...classes.map((c, i) => new Option((i + 1) + ' \u00b7 ' + c.name, String(i))));
  select.addEventListener('change', () => {
    if (select.value !== '') { file(frame, Number(select.value), select.closest('.doubt')); }
  });
  return select;
}

function throwAwayButton(frame) {
  const button = make('button', { type: 'button', className: 'btn throw-away',
    textContent: 'None of these: throw it away',
    attrs: { 'aria-label': 'None of the classes: throw this picture away' } });
  button.addEventListener('click', () => dismiss(frame, button.closest('.doubt')));
  return button;
}

function doubt(frame) {
  const kept = itemsById.get(frame.id);
  if (kept) { return kept; }
  const li = newItem(frame);
  itemsById.set(frame.id, li);
  return li;
}

function newItem(frame) {
  const classes = (state.status && state.status.classes) || [];
  const img = make('img', { className: 'doubt-img', alt: 'A picture the box was unsure of', loading: 'lazy',
    decoding: 'async', draggable: false });  // any shape (a hand's crop): sized and shown whole by the CSS
  img.src = frame.thumb;
  const few = classes.length <= ALL_BUTTONS_UP_TO;
  const choices = few ? classes.map((c, i) => fileButton(frame, i))
    : [frame.best, frame.runner_up].filter((i) => i !== null && i !== undefined).map((i) => fileButton(frame, i))
      .concat([otherClass(frame, classes)]);
  return make('li', { className: 'doubt', attrs: { 'data-id': String(frame.id) } }, img,
    make('div', { className: 'doubt-text' },
      make('p', { className: 'doubt-age', textContent: agoText(ageOf(frame)) }),
      make('p', { className: 'doubt-question', textContent: question(frame) }),
      make('p', { className: 'doubt-help', textContent: 'Tap what it shows:' })),
    make('div', { className: 'doubt-buttons', attrs: { role: 'group', 'aria-label': 'File this picture as' } },
      ...choices, throwAwayButton(frame)));
}

function draw() {
  view.shownFor = state.unlocked ? view.key : '';
  const ids = new Set(view.frames.map((frame) => frame.id));
  const names = ((state.status && state.status.classes) || []).map((c) => c.name).join('\u0000');
  if (names !== itemsFor) {  // renamed: the buttons say the new names
    itemsById.clear();
    itemsFor = names;
  }
  for (const id of [...itemsById.keys()]) {
    if (!ids.has(id) || !state.unlocked) { itemsById.delete(id); }
  }
  els.list.replaceChildren(...(state.unlocked ? view.frames.map(doubt) : []));
  renderAges();
  setHidden(els.empty, !state.unlocked || view.loading || view.frames.length > 0);
}

function removeFrame(id, li) {
  view.frames = view.frames.filter((frame) => frame.id !== id);
  itemsById.delete(id);
  if (li) { li.remove(); }
  setHidden(els.empty, view.frames.length > 0);
}

/** Send what was chosen for a frame (`path`, `body`); `done(result)` says so. */
async function settle(frame, li, path, body, done) {
  if (!state.unlocked) { return; }
  for (const control of li ? li.querySelectorAll('button, select') : []) { control.disabled = true; }
  try {
    const result = await post(path, body);
    removeFrame(frame.id, li);
    if (result.status) { update({ status: result.status }); }
    done(result);
  } catch (error) {
    if (error.status === 404 && error.data && error.data.gone === frame.id) {
      removeFrame(frame.id, li);  // filed or thrown away from another phone, or pushed out by newer frames
    } else {
      for (const control of li ? li.querySelectorAll('button, select') : []) { control.disabled = false; }
    }
    reportError(error);
  }
}

function file(frame, classId, li) {
  return settle(frame, li, '/api/doubtful/file', { id: frame.id, class: classId },
    () => showBanner('Taught \u201c' + className(classId) + '\u201d with that picture.', 'info'));
}

function dismiss(frame, li) {
  return settle(frame, li, '/api/doubtful/dismiss', { id: frame.id },
    () => showBanner('Thrown away: the box learned nothing from that picture.', 'info'));
}

/** Called with every status; `shown`: the inbox view is on the screen. */
export function renderInbox(s, shown) {
  const waiting = Number((s.doubtful || {}).count) || 0;
  setHidden(els.waiting, state.unlocked || !waiting);
  setText(els.waiting, waiting === 1 ? '1 picture waits here.' : waiting + ' pictures wait here.');
  if (!state.unlocked) {
    if (view.frames.length || view.key) {  // locked again: no picture stays on the page
      view.frames = [];
      view.key = '';
      draw();
    }
    setHidden(els.empty, true);
    return;
  }
  if (shown && !view.loading && keyFor(s) !== view.key) {
    load(s);
  } else if (!view.shownFor && view.key && !view.loading) {
    draw();
  } else if (shown) {
    renderAges();
  }
}
