/* The gallery: one class's stored examples, newest first, a page at a time (the next page loads
 * as its "Show more" button comes into view), or the examples behind one number of the quality
 * view's mix-up table.  Tap pictures to select them, then delete them or move them to another
 * class; the class cards' counts follow from the box's answer at once. */
import { $, make, setText, setHidden, colourOf, examples } from './dom.js';
import { state, update, className } from './store.js';
import { request, post } from './api.js';
import { showBanner, reportError } from './banner.js';
import { SOURCE } from './vocab.js';

const PAGE = 48;        // thumbnails asked for at a time
const MOST_KEPT = 200;  // a refresh asks again for what is shown, up to this many
const MOST_AT_ONCE = 500;  // the box deletes or moves at most this many per request

const els = {
  classes: $('gallery-classes'), caption: $('gallery-caption'), back: $('gallery-back'), grid: $('gallery-grid'),
  more: $('gallery-more'), bar: $('gallery-bar'), selected: $('gallery-selected'), unselect: $('gallery-unselect'),
  remove: $('gallery-delete'), target: $('gallery-target'), move: $('gallery-move')
};

const SOURCE_TEXT = {
  [SOURCE.BUTTON]: 'taught with a button', [SOURCE.PHONE]: 'taught from a phone',
  [SOURCE.INBOX]: 'filed from the unsure pictures', [SOURCE.IMPORT]: 'imported', [SOURCE.MIGRATED]: 'kept from before'
};

const view = {
  classId: 0,          // the class shown
  cell: null,          // or the examples of one mix-up cell: {class, answered, ids, count}
  items: [],           // what is shown, newest first: [{id, thumb, taken, source}]
  next: null,          // where the next page starts (an id for a class, an index into cell.ids), null: no more
  key: '',             // what the items were loaded for
  loading: false,
  generation: 0,       // bumps on every reload and lock: a late answer for an older one is dropped
  selected: new Set(), // ids
  current: null,       // id of the thumbnail that has the grid's one tab stop
  busy: false,         // a delete or move is on its way
  shown: false
};
const itemsById = new Map();  // id -> its <li>, reused so a refresh does not load pictures again
let chipsFor = '';

export const thumbUrl = (id) => '/api/examples/' + id + '.jpg';

const countOf = (s, i) => Number(((s.classes || [])[i] || {}).examples) || 0;

/** What the gallery shows for status `s`: it is loaded again when this changes. */
function keyFor(s) {
  if (view.cell) { return 'cell:' + view.cell.class + ':' + view.cell.answered; }
  const library = s.library || {};
  return ['class', view.classId, countOf(s, view.classId), library.examples, library.unwritten].join(':');
}

// -- loading ----------------------------------------------------------------------------------
async function reload(s) {
  const generation = ++view.generation;
  view.key = keyFor(s);
  view.loading = true;
  try {
    if (view.cell) {
      const ids = view.cell.ids;
      const upTo = Math.min(ids.length, Math.max(PAGE, view.items.length));
      show(ids.slice(0, upTo).map((id) => ({ id, thumb: thumbUrl(id) })), upTo < ids.length ? upTo : null);
    } else {
      const limit = Math.min(MOST_KEPT, Math.max(PAGE, view.items.length));
      const data = await request('GET', '/api/examples?class=' + view.classId + '&limit=' + limit);
      if (generation !== view.generation) { return; }
      show(data.examples || [], data.next);
    }
  } catch (error) {
    if (generation === view.generation) {
      view.key = '';  // try again with the next status
      if (error.status !== 401) { reportError(error); }
    }
  } finally {
    if (generation === view.generation) { view.loading = false; }
  }
  renderCaption(state.status || {});
}

async function loadMore() {
  if (view.loading || view.next === null || !view.shown) { return; }
  const generation = view.generation;
  view.loading = true;
  try {
    if (view.cell) {
      const ids = view.cell.ids;
      const upTo = Math.min(ids.length, view.next + PAGE);
      show(view.items.concat(ids.slice(view.next, upTo).map((id) => ({ id, thumb: thumbUrl(id) }))),
        upTo < ids.length ? upTo : null);
    } else {
      const data = await request('GET', '/api/examples?class=' + view.classId + '&before=' + view.next + '&limit=' + PAGE);
      if (generation !== view.generation) { return; }
      const have = new Set(view.items.map((item) => item.id));
      show(view.items.concat((data.examples || []).filter((item) => !have.has(item.id))), data.next);
    }
  } catch (error) {
    if (generation === view.generation) { reportError(error); }
  } finally {
    if (generation === view.generation) { view.loading = false; }
  }
  renderCaption(state.status || {});
  watchMore();  // still in view (a tall screen): the observer says so again
}

// -- drawing ----------------------------------------------------------------------------------
function takenText(item) {
  const parts = [];
  if (item.taken) { parts.push('taken ' + new Date(item.taken * 1000).toLocaleString()); }
  if (SOURCE_TEXT[item.source]) { parts.push(SOURCE_TEXT[item.source]); }
  return parts.join(', ');
}

function thumb(item) {
  let li = itemsById.get(item.id);
  if (li) { return li; }
  // no size of its own: a crop is any shape (a hand's box), the square cell shows it whole (CSS)
  const img = make('img', { className: 'thumb-img', alt: '', loading: 'lazy', decoding: 'async', draggable: false });
  li = make('li', { className: 'thumb', attrs: { role: 'option', 'aria-selected': 'false', tabindex: '-1',
    'data-id': String(item.id) } }, img);
  const about = takenText(item);
  li.setAttribute('aria-label', 'Example ' + item.id + (about ? ', ' + about : ''));
  if (about) { li.title = about; }
  if (item.thumb) {
    img.src = item.thumb;  // after loading="lazy": only pictures near the screen are fetched
  } else {
    li.classList.add('no-picture');
  }
  itemsById.set(item.id, li);
  return li;
}

function show(items, next) {
  view.items = items;
  view.next = next === undefined ? null : next;
  const ids = new Set(items.map((item) => item.id));
  for (const id of [...view.selected]) {
    if (!ids.has(id)) { view.selected.delete(id); }  // only what can be seen can be selected
  }
  for (const id of [...itemsById.keys()]) {
    if (!ids.has(id)) { itemsById.delete(id); }
  }
  els.grid.replaceChildren(...items.map(thumb));
  if (!ids.has(view.current)) { view.current = items.length ? items[0].id : null; }
  renderSelection();
  setHidden(els.more, view.next === null);
  watchMore();
}

function renderSelection() {
  for (const li of els.grid.children) {
    const id = Number(li.dataset.id);
    const on = view.selected.has(id);
    if (li.getAttribute('aria-selected') !== String(on)) { li.setAttribute('aria-selected', String(on)); }
    li.tabIndex = id === view.current ? 0 : -1;
  }
  const n = view.selected.size;
  setHidden(els.bar, n === 0);
  setText(els.selected, n + ' selected');
  els.remove.disabled = view.busy || !n;
  els.move.disabled = view.busy || !n || els.target.value === '';
  els.unselect.disabled = view.busy || !n;
}

function buildChips(s) {
  const classes = s.classes || [];
  const key = classes.length + ':' + classes.map((c) => c.name).join('\u0000');
  if (chipsFor === key) { return; }
  chipsFor = key;
  els.classes.replaceChildren(...classes.map((c, i) => {
    const chip = make('button', { type: 'button', className: 'btn chip', style: { '--accent': colourOf(i) },
      attrs: { 'data-class': String(i), 'aria-pressed': 'false' } },
    make('span', { className: 'chip-number', textContent: String(i + 1), attrs: { 'aria-hidden': 'true' } }),
    make('span', { className: 'chip-name', textContent: c.name }),
    make('span', { className: 'chip-count' }));
    chip.addEventListener('click', () => showClass(i));
    return chip;
  }));
  // the move targets: every class but the one the examples are in
  els.target.replaceChildren(new Option('Move to class\u2026', ''),
    ...classes.map((c, i) => new Option((i + 1) + ' \u00b7 ' + c.name, String(i))));
}

function renderChips(s) {
  buildChips(s);
  [...els.classes.children].forEach((chip, i) => {
    const on = !view.cell && i === view.classId;
    if (chip.getAttribute('aria-pressed') !== String(on)) { chip.setAttribute('aria-pressed', String(on)); }
    setText(chip.querySelector('.chip-count'), String(countOf(s, i)));
    chip.setAttribute('aria-label', className(i) + ': ' + examples(countOf(s, i)));
  });
  const own = view.cell ? view.cell.class : view.classId;
  for (const option of els.target.options) {
    option.disabled = option.value === String(own);
  }
  if (els.target.value === String(own)) { els.target.value = ''; }
}

function renderCaption(s) {
  if (!state.unlocked) {
    setText(els.caption, '');
    setHidden(els.back, true);
    return;
  }
  setHidden(els.back, !view.cell);
  if (view.cell) {
    const { cell } = view;
    setText(els.back, 'Back to all of \u201c' + className(cell.class) + '\u201d');
    setText(els.caption, (cell.class === cell.answered
      ? '\u201c' + className(cell.class) + '\u201d examples the box recognises: '
      : '\u201c' + className(cell.class) + '\u201d examples the box would take for \u201c' + className(cell.answered) + '\u201d: ')
      + cell.ids.length + '. Tap pictures to select them.');
    return;
  }
  const n = countOf(s, view.classId);
  const library = s.library || {};
  let text;
  if (!n) {
    text = 'No examples of \u201c' + className(view.classId) + '\u201d yet: hold its teach button to add some.';
  } else {
    text = '\u201c' + className(view.classId) + '\u201d: ' + examples(n) + ', newest first. Tap pictures to select them.';
    const stored = view.next === null && !view.loading ? view.items.length : null;
    if (library.unwritten) {
      text += ' New ones appear once they are stored.';
    } else if (stored !== null && stored < n) {
      const without = n - stored;
      text += ' ' + (without === 1 ? 'One was' : without + ' were') + ' learned without a picture (imported or from before).';
    }
  }
  setText(els.caption, text);
}

/** Called with every status; `shown`: the pictures view is on the screen. */
export function renderGallery(s, shown) {
  renderChips(s);
  if (!state.unlocked) {
    if (view.items.length || view.key) {  // locked again: no picture stays on the page
      view.generation += 1;
      view.key = '';
      view.loading = false;
      view.cell = null;
      view.selected.clear();
      show([], null);
    }
    view.shown = false;
    setHidden(els.grid, true);
    setHidden(els.more, true);
    renderCaption(s);
    return;
  }
  setHidden(els.grid, false);
  view.shown = shown;
  if (view.classId >= (s.classes || []).length) { view.classId = 0; }
  if (shown && !view.loading && keyFor(s) !== view.key) { reload(s); }
  renderCaption(s);
  renderSelection();
}

// -- choosing what is shown ---------------------------------------------------------------------
function restart() {
  view.generation += 1;
  view.loading = false;
  view.key = '';
  view.selected.clear();
  view.items = [];
  show([], null);
  update({});  // render again: the gallery loads what is now asked for
}

export function showClass(i) {
  if (!view.cell && view.classId === i && view.key) { return; }
  view.cell = null;
  view.classId = i;
  restart();
}

/** Show the examples behind one number of the mix-up table (`cell`: {class, answered, ids, count}). */
export function openCell(cell) {
  view.cell = { class: cell.class, answered: cell.answered, ids: [...cell.ids], count: cell.count };
  view.classId = cell.class;
  restart();
  if (cell.class !== cell.answered) { els.target.value = String(cell.answered); }  // most likely what they show
  renderSelection();
}

// -- selecting ------------------------------------------------------------------------------------
function toggle(li) {
  const id = Number(li.dataset.id);
  if (view.selected.has(id)) {
    view.selected.delete(id);
  } else {
    view.selected.add(id);
  }
  view.current = id;
  renderSelection();
}

function columns() {
  const items = els.grid.children;
  if (!items.length) { return 1; }
  const top = items[0].offsetTop;
  let n = 0;
  while (n < items.length && items[n].offsetTop === top) { n += 1; }
  return Math.max(1, n);
}

function onGridKey(event) {
  const items = [...els.grid.children];
  const at = items.findIndex((li) => Number(li.dataset.id) === view.current);
  if (at < 0) { return; }
  const steps = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: columns(), ArrowUp: -columns(), Home: -at,
    End: items.length - 1 - at };
  if (event.key === ' ' || event.key === 'Enter') {
    event.preventDefault();
    toggle(items[at]);
  } else if (event.key in steps) {
    event.preventDefault();
    const to = items[Math.max(0, Math.min(items.length - 1, at + steps[event.key]))];
    view.current = Number(to.dataset.id);
    renderSelection();
    to.focus();
    if (to === items[items.length - 1] && view.next !== null) { loadMore(); }
  }
}

// -- deleting and moving ----------------------------------------------------------------------------
function forget(ids) {
  const gone = new Set(ids);
  if (view.cell) { view.cell.ids = view.cell.ids.filter((id) => !gone.has(id)); }
  for (const id of gone) { view.selected.delete(id); }
  show(view.items.filter((item) => !gone.has(item.id)), view.next);
}

function accepted(result) {
  if (result.status) {
    update({ status: result.status });  // the counts and the class cards follow at once
    if (!view.cell) { view.key = keyFor(result.status); }  // what is shown is already right
  }
}

const already = (asked, done) => (asked > done ? ' (' + (asked - done) + ' had already gone)' : '');

async function act(run) {
  view.busy = true;
  renderSelection();
  try {
    await run();
  } catch (error) {
    reportError(error);
  } finally {
    view.busy = false;
    renderSelection();
    renderCaption(state.status || {});
  }
}

function chosen() {
  return [...view.selected].slice(0, MOST_AT_ONCE);
}

function deleteSelected() {
  const ids = chosen();
  if (!ids.length || !state.unlocked) { return; }
  const own = className(view.cell ? view.cell.class : view.classId);
  if (!window.confirm('Delete ' + examples(ids.length) + ' of \u201c' + own + '\u201d? This cannot be undone.')) { return; }
  act(async () => {
    const result = await post('/api/examples/delete', { ids });
    forget(ids);
    accepted(result);
    showBanner('Deleted ' + examples(result.deleted) + ' of \u201c' + own + '\u201d' + already(result.asked, result.deleted) + '.', 'info');
  });
}

function moveSelected() {
  const ids = chosen();
  const to = els.target.value === '' ? null : Number(els.target.value);
  if (!ids.length || to === null || !state.unlocked) { return; }
  act(async () => {
    const result = await post('/api/examples/move', { ids, class: to });
    forget(ids);
    accepted(result);
    showBanner('Moved ' + examples(result.moved) + ' to \u201c' + className(to) + '\u201d' + already(result.asked, result.moved) + '.', 'info');
  });
}

// -- wiring ----------------------------------------------------------------------------------------
let moreWatcher = null;

function watchMore() {
  if (!moreWatcher) { return; }
  moreWatcher.unobserve(els.more);
  if (view.next !== null) { moreWatcher.observe(els.more); }
}

export function initGallery() {
  els.grid.addEventListener('click', (event) => {
    const li = event.target.closest('.thumb');
    if (li && els.grid.contains(li)) { toggle(li); }
  });
  els.grid.addEventListener('keydown', onGridKey);
  els.grid.addEventListener('dragstart', (event) => event.preventDefault());
  els.more.addEventListener('click', loadMore);
  els.unselect.addEventListener('click', () => {
    view.selected.clear();
    renderSelection();
  });
  els.remove.addEventListener('click', deleteSelected);
  els.move.addEventListener('click', moveSelected);
  els.target.addEventListener('change', renderSelection);
  els.back.addEventListener('click', () => {
    view.classId = view.cell ? view.cell.class : view.classId;
    view.cell = null;
    restart();
  });
  if ('IntersectionObserver' in window) {
    moreWatcher = new IntersectionObserver((entries) => {
      if (entries.some((entry) => entry.isIntersecting)) { loadMore(); }
    }, { rootMargin: '400px 0px' });
  }
}
