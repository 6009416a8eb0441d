/* The quality view: for each class, how many of its examples the box would still recognise had it
 * not been taught them (leave-one-out), what the class is mistaken for and what to do, in plain
 * words; and a small mix-up table whose numbers open the examples behind them in the gallery. */
import { $, make, setText, setHidden, colourOf, pct, isNumber } from './dom.js';
import { state, emit, className } from './store.js';
import { request } from './api.js';
import { reportError } from './banner.js';
import { openCell } from './gallery.js';

const els = {
  list: $('quality-list'), table: $('confusion'), help: $('confusion-help'), locked: $('confusion-locked'),
  none: $('mixups-none')
};
const MIN_RELOAD_MS = 2000;  // while a class is taught the counts change every frame: ask at most this often
const view = { key: '', loading: false, data: null, drawn: '', loadedAt: 0 };

/** The quality changes with the examples: loaded again when the counts or names change. */
function keyFor(s) {
  const library = s.library || {};
  return (s.classes || []).map((c) => c.examples + ':' + c.name).join('\u0000') + '|' + library.examples + ':' +
    library.unwritten;
}

async function load(s) {
  view.key = keyFor(s);
  view.loading = true;
  view.loadedAt = Date.now();
  try {
    view.data = await request('GET', '/api/quality');
  } catch (error) {
    view.key = '';
    reportError(error);
  } finally {
    view.loading = false;
  }
  draw();
}

// -- drawing ----------------------------------------------------------------------------------
function classRow(c) {
  const judged = isNumber(c.loo_accuracy);
  const track = make('div', { className: 'bar-track', attrs: { 'aria-hidden': 'true' } },
    make('div', { className: 'bar', style: { width: judged ? (c.loo_accuracy * 100).toFixed(1) + '%' : '0' } }));
  const facts = [];
  if (judged) {
    facts.push(make('span', { className: 'q-fact', textContent: c.correct + ' of ' + c.examples + ' recognised' }));
    if (isNumber(c.confused_with)) {
      facts.push(make('span', { className: 'q-fact q-mistaken' }, 'mistaken for ',
        make('strong', { textContent: '\u201c' + className(c.confused_with) + '\u201d' })));
    }
  }
  return make('li', { className: 'quality-row' + (judged ? '' : ' unjudged'), style: { '--accent': colourOf(c.class) },
    attrs: { 'data-class': String(c.class) } },
  make('div', { className: 'q-head' },
    make('span', { className: 'class-number', textContent: String(c.class + 1), attrs: { 'aria-hidden': 'true' } }),
    make('span', { className: 'q-name', textContent: c.name }),
    make('span', { className: 'q-score', textContent: judged ? pct(c.loo_accuracy) : '\u2013',
      attrs: { 'aria-label': judged ? pct(c.loo_accuracy) + ' recognised' : 'not judged yet' } })),
  track,
  facts.length ? make('p', { className: 'q-facts' }, ...facts) : '',
  make('p', { className: 'q-hint', textContent: c.hint }));
}

function cellOf(data, taught, answered) {
  return (data.cells || []).find((cell) => cell.class === taught && cell.answered === answered);
}

function number(i) {
  return make('span', { className: 'mini-number', textContent: String(i + 1), style: { '--accent': colourOf(i) },
    attrs: { 'aria-hidden': 'true' } });
}

function drawTable(data) {
  const taught = (data.classes || []).filter((c) => c.examples > 0).map((c) => c.class);
  const judged = new Set((data.classes || []).filter((c) => isNumber(c.loo_accuracy)).map((c) => c.class));
  setHidden(els.table, taught.length < 2);
  setHidden(els.help, taught.length < 2);
  setHidden(els.none, taught.length >= 2);
  setHidden(els.locked, state.unlocked || taught.length < 2);
  if (taught.length < 2) { return; }
  const head = make('tr', {},
    make('th', { scope: 'col', className: 'corner' }, make('span', { textContent: 'taught \u2193 answer \u2192' })),
    ...taught.map((j) => make('th', { scope: 'col', title: className(j) }, number(j),
      make('span', { className: 'sr-only', textContent: 'answered ' + className(j) }))));
  const rows = taught.map((i) => make('tr', { className: judged.has(i) ? '' : 'unjudged' },
    make('th', { scope: 'row', title: className(i) }, number(i), make('span', { className: 'row-name', textContent: className(i) })),
    ...taught.map((j) => {
      const n = judged.has(i) ? ((data.confusion[i] || [])[j] || 0) : null;
      const kind = n === null ? 'cell-none' : (i === j ? 'cell-right' : (n ? 'cell-wrong' : 'cell-zero'));
      const td = make('td', { className: kind });
      if (n === null) {
        td.textContent = '\u2013';
      } else if (n && state.unlocked) {
        const cell = cellOf(data, i, j);
        const button = make('button', { type: 'button', className: 'cell-button', textContent: String(n),
          attrs: { 'aria-label': n + ' of \u201c' + className(i) + '\u201d answered as \u201c' + className(j) +
            '\u201d: show them', 'data-taught': String(i), 'data-answered': String(j) } });
        button.addEventListener('click', () => {
          if (!cell) { return; }
          openCell(cell);
          emit('library-tab', 'pictures');
        });
        td.append(button);
      } else {
        td.textContent = String(n);
      }
      return td;
    })));
  els.table.replaceChildren(
    make('caption', { className: 'sr-only', textContent: 'Mix-ups: a row per class as taught, a column per answer' }),
    make('thead', {}, head), make('tbody', {}, ...rows));
}

function draw() {
  const data = view.data;
  if (!data) { return; }
  view.drawn = view.key + '|' + state.unlocked;
  els.list.replaceChildren(...(data.classes || []).map(classRow));
  drawTable(data);
}

/** Called with every status; `shown`: the quality view is on the screen. */
export function renderQuality(s, shown) {
  const due = !view.data || Date.now() - view.loadedAt >= MIN_RELOAD_MS;
  if (shown && !view.loading && keyFor(s) !== view.key && due) {
    load(s);
  } else if (view.data && view.drawn !== view.key + '|' + state.unlocked) {
    draw();  // locked or unlocked: the numbers become buttons, or plain numbers again
  }
}
