/* The examples card: how full the box's library is, and three views of it (tabs): the pictures of
 * each class, how well each class is known, and the pictures the box was unsure of.  A view loads
 * only while the card is near the screen and its tab is chosen. */
import { $, setText, setHidden, examples } from './dom.js';
import { on } from './store.js';
import { renderGallery, initGallery } from './gallery.js';
import { renderQuality } from './quality.js';
import { renderInbox } from './inbox.js';
import { shortName } from './model.js';
import { SWITCH } from './vocab.js';

const TABS = ['pictures', 'quality', 'inbox'];
const els = {
  card: $('library'), body: $('library-body'), none: $('library-none'), summary: $('library-summary'),
  notice: $('library-notice'), noticeText: $('library-notice-text'), noticeClose: $('library-notice-close'),
  inboxCount: $('inbox-count'),
  tabs: Object.fromEntries(TABS.map((name) => [name, $('tab-' + name)])),
  views: Object.fromEntries(TABS.map((name) => [name, $(name + '-view')]))
};
const view = { active: 'pictures', near: !('IntersectionObserver' in window), dismissed: null, last: null };

export function formatBytes(n) {
  const bytes = Number(n) || 0;
  if (bytes < 1 << 20) { return Math.max(0, Math.round(bytes / 1024)) + ' KB'; }
  if (bytes < 1 << 30) { return (bytes / (1 << 20)).toFixed(1).replace(/\.0$/, '') + ' MB'; }
  return (bytes / (1 << 30)).toFixed(1).replace(/\.0$/, '') + ' GB';
}

function summary(library, sw) {
  let text = examples(library.examples) + ' kept: ' + formatBytes(library.bytes) + ' of ' +
    formatBytes(library.max_bytes) + '; a class keeps at most ' + Number(library.max_per_class).toLocaleString('en') + '.';
  if (library.unwritten) { text += ' ' + library.unwritten + ' still being stored.'; }
  if (sw && sw.state === SWITCH.EMBEDDING) {  // the model card has the details
    text += ' Learning them again with ' + shortName(sw.model) + (sw.total ? ': ' + sw.done + ' of ' + sw.total : '') + '.';
  }
  return text;
}

function renderNotice(library) {
  const notice = library.notice;
  setHidden(els.notice, !notice || notice === view.dismissed);
  if (notice) { setText(els.noticeText, 'Not kept: ' + notice + '.'); }
}

function renderTabs(s) {
  for (const name of TABS) {
    const on = name === view.active;
    const tab = els.tabs[name];
    if (tab.getAttribute('aria-selected') !== String(on)) {
      tab.setAttribute('aria-selected', String(on));
      tab.tabIndex = on ? 0 : -1;
    }
    setHidden(els.views[name], !on);
  }
  const waiting = Number((s.doubtful || {}).count) || 0;
  setHidden(els.inboxCount, !waiting);
  setText(els.inboxCount, String(waiting));
  els.tabs.inbox.setAttribute('aria-label', 'Unsure: ' + (waiting === 1 ? '1 picture' : waiting + ' pictures'));
}

export function renderLibrary(s) {
  view.last = s;
  const library = s.library;
  setHidden(els.body, !library);
  setHidden(els.none, !!library);
  if (!library) { return; }
  setText(els.summary, summary(library, s.model_switch));
  renderNotice(library);
  renderTabs(s);
  const near = view.near && !document.hidden;
  for (const [part, name] of [[renderGallery, 'pictures'], [renderQuality, 'quality'], [renderInbox, 'inbox']]) {
    try {
      part(s, near && view.active === name);
    } catch (e) {
      console.error(e);
    }
  }
}

function select(name, focus = false) {
  if (!TABS.includes(name)) { return; }
  view.active = name;
  if (view.last) { renderLibrary(view.last); }
  if (focus) { els.tabs[name].focus(); }
}

export function initLibrary() {
  initGallery();
  for (const name of TABS) {
    els.tabs[name].addEventListener('click', () => select(name));
    els.tabs[name].addEventListener('keydown', (event) => {
      const at = TABS.indexOf(name);
      const to = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: TABS.length - 1 }[event.key];
      if (to === undefined) { return; }
      event.preventDefault();
      select(TABS[(to + TABS.length) % TABS.length], true);
    });
  }
  els.noticeClose.addEventListener('click', () => {
    view.dismissed = view.last && view.last.library ? view.last.library.notice : null;
    setHidden(els.notice, true);
  });
  on('library-tab', (name) => {
    select(name);
    els.views[name].scrollIntoView({ block: 'start' });
  });
  if (!view.near) {
    new IntersectionObserver((entries) => {
      view.near = entries.some((entry) => entry.isIntersecting);
      if (view.near && view.last) { renderLibrary(view.last); }
    }, { rootMargin: '600px 0px' }).observe(els.card);
  }
}
