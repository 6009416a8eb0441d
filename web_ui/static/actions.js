/* Undo, Clear all, Export, Import. */
import { $, examples, capitalise } from './dom.js';
import { formatBytes } from './library.js';
import { SWITCH } from './vocab.js';
import { state, className } from './store.js';
import { post } from './api.js';
import { showBanner, reportError } from './banner.js';

const els = {
  undo: $('undo'), clearAll: $('clear-all'), exportLink: $('export'), importInput: $('import'),
  importLabel: $('import-label')
};

const IMPORT_TIMEOUT_MS = 10 * 60 * 1000;  // tens of MB over a Pi's Wi-Fi, then every example stored

export const CLEAR_ALL_QUESTION = 'Forget every example of every class? Class names stay. ' +
  'This cannot be undone (Export first if you want to keep them).';

export function renderActions() {
  const unlocked = state.unlocked;
  els.undo.disabled = !unlocked;
  els.clearAll.disabled = !unlocked;
  els.importInput.disabled = !unlocked;
  els.importLabel.classList.toggle('disabled', !unlocked);
  els.importLabel.setAttribute('aria-disabled', String(!unlocked));
  els.exportLink.setAttribute('aria-disabled', String(!unlocked));
  els.exportLink.classList.toggle('disabled', !unlocked);
  if (unlocked) {
    els.exportLink.removeAttribute('tabindex');
  } else {
    els.exportLink.setAttribute('tabindex', '-1');
  }
}

async function undo() {
  try {
    const result = await post('/api/undo', {});
    if (!result.undone) {
      showBanner(result.message ? capitalise(result.message) + '.' : 'Nothing to undo.', 'info');
    } else {
      showBanner('Undone: ' + examples(result.undone.examples) + ' of \u201c' +
        className(result.undone.class) + '\u201d.', 'info');
    }
  } catch (error) {
    reportError(error);
  }
}

async function clearAll() {
  if (!window.confirm(CLEAR_ALL_QUESTION)) { return; }
  try {
    const result = await post('/api/clear-all', { confirm: true });
    showBanner('Cleared every class (' + examples(result.forgotten) + ' forgotten); the names stay.', 'info');
  } catch (error) {
    reportError(error);
  }
}

/** Why the page does not send a file this big, or why the box refused it for its size. */
function tooBig(file, most) {
  return '\u201c' + file.name + '\u201d is ' + formatBytes(file.size) + '; the page takes files of at most ' +
    formatBytes(most) + '. Nothing was changed. Copy it to the box and run \u201cteachbox import FILE\u201d there ' +
    '(stop the service first).';
}

async function importFile() {
  const file = els.importInput.files && els.importInput.files[0];
  if (!file) { return; }
  const most = Number(els.importInput.dataset.maxBytes) || 0;
  if (most && file.size > most) {  // the box would refuse it: do not send it at all
    els.importInput.value = '';
    showBanner(tooBig(file, most), 'error');
    return;
  }
  if (!window.confirm('Import \u201c' + file.name + '\u201d? It replaces everything the box has learned.')) {
    els.importInput.value = '';
    return;
  }
  els.importLabel.classList.add('busy');
  try {
    const result = await post('/api/import', null, { raw: file, timeout: IMPORT_TIMEOUT_MS });
    const taught = (result.classes || []).filter((c) => c.examples).map((c) => c.name + ' (' + c.examples + ')');
    const again = result.switch && result.switch.state === SWITCH.EMBEDDING;  // made with another model
    showBanner('Imported \u201c' + file.name + '\u201d' + (taught.length ? ': ' + taught.join(', ') : ' (no examples in it)') + '.' +
      (again ? ' It was made with another model: the box learns its pictures again now (see Model).' : ''), 'info');
  } catch (error) {
    if (error.status === 413 && !(error.data && error.data.error)) {  // refused before the page saw it
      showBanner(tooBig(file, most || file.size), 'error');
    } else {
      reportError(error);
    }
  } finally {
    els.importLabel.classList.remove('busy');
    els.importInput.value = '';
  }
}

export function initActions() {
  els.undo.addEventListener('click', undo);
  els.clearAll.addEventListener('click', clearAll);
  els.exportLink.addEventListener('click', (event) => {
    if (!state.unlocked) {
      event.preventDefault();
      showBanner('Locked: unlock this phone to export.', 'error');
    }
  });
  els.importInput.addEventListener('change', importFile);
}
