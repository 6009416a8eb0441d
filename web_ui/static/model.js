/* The model card: which embedding model the box runs, the others it knows (those on the box can
 * be chosen, the rest must be fetched first), and switching: every example is learned again with
 * the new model while the box keeps answering with the old one; the status's model_switch says
 * how far that is. */
import { $, make, setText, setHidden, clamp01, isNumber } from './dom.js';
import { state, update } from './store.js';
import { request, post } from './api.js';
import { reportError } from './banner.js';
import { SWITCH } from './vocab.js';
import { looksAtPictures, thingsOf } from './looks.js';

const els = {
  now: $('model-now'), choice: $('model-choice'), button: $('model-switch'), fetch: $('model-fetch'),
  progress: $('model-progress'), progressText: $('model-progress-text'), bar: $('model-progress-bar'),
  result: $('model-result'), pictures: $('model-pictures')
};
const view = {
  models: null,     // the last GET /api/models answer's list
  key: '',          // what it was loaded for (the model in use and the switch's state)
  loading: false,
  built: '',        // what the options were built from
  watched: '',      // the model whose switch this page saw going on (only then "now using" is said)
  asking: false     // a switch request is on its way
};

/** "mobilenet_v2_1.0_224" for "mobilenet_v2_1.0_224_quant_embedding_extractor.tflite". */
export function shortName(name) {
  return String(name || '').replace(/\.tflite$/, '').replace(/(_quant)?_embedding_extractor$/, '');
}

function keyFor(s) {
  const sw = s.model_switch;
  return (s.model || '') + '|' + (sw ? sw.model + ':' + sw.state : '');
}

async function load(s) {
  view.key = keyFor(s);
  view.loading = true;
  try {
    const data = await request('GET', '/api/models');
    view.models = data.models || [];
  } catch (error) {
    view.key = '';
    if (error.status) { reportError(error); }  // no answer at all: the connection line says so
  } finally {
    view.loading = false;
  }
  if (state.status) { renderModel(state.status); }
}

function optionText(m) {
  let text = shortName(m.name) + ' \u00b7 ' + m.dim + '-d';
  if (m.current) {
    text += ' (in use)';
  } else if (!m.present) {
    text += ' \u2014 fetch first';
  }
  return text;
}

function buildOptions(models) {
  const key = models.map((m) => m.name + ':' + m.present + ':' + m.current).join('|');
  if (view.built === key) { return; }
  view.built = key;
  const kept = els.choice.value;
  els.choice.replaceChildren(...models.map((m) => {
    const option = new Option(optionText(m), m.name);
    option.disabled = m.current || !m.present;
    return option;
  }));
  const usable = models.filter((m) => m.present && !m.current).map((m) => m.name);
  els.choice.value = usable.includes(kept) ? kept : (usable[0] || (models.find((m) => m.current) || {}).name || '');
  const missing = models.filter((m) => !m.present);
  setHidden(els.fetch, !missing.length);
  if (missing.length) {
    setText(els.fetch, (missing.length === 1 ? 'One model is' : missing.length + ' models are') + ' not on this box ' +
      '(\u201cfetch first\u201d): \u201cteachbox fetch-model --name NAME\u201d on the box puts one there.');
  }
}

function renderNow(s) {
  if (!looksAtPictures(s)) {  // the box answers with the landmarks' features, not with a model of these
    const key = 'not-pictures|' + thingsOf(s.source);
    if (els.now.dataset.key === key) { return; }
    els.now.dataset.key = key;
    els.now.replaceChildren('The model is what the box sees ', make('strong', { textContent: 'pictures' }),
      ' with; it looks at ' + thingsOf(s.source) + ' now.');
    return;
  }
  const current = (view.models || []).find((m) => m.current);
  const name = current ? current.name : s.model;
  const dim = current ? current.dim : s.dim;
  const key = name + '|' + dim + '|' + (current ? current.note : '');
  if (els.now.dataset.key === key) { return; }
  els.now.dataset.key = key;
  els.now.replaceChildren('The box learns with ', make('strong', { className: 'model-name', textContent: shortName(name) || '\u2013' }),
    isNumber(dim) ? ' (' + dim + '-d)' : '', current && current.note ? make('span', { className: 'model-note', textContent: current.note }) : '');
}

function renderSwitch(s) {
  const sw = s.model_switch;
  const running = !!sw && sw.state === SWITCH.EMBEDDING;
  setHidden(els.progress, !running);
  if (running) {
    view.watched = sw.model;
    setText(els.progressText, 'Learning again with ' + shortName(sw.model) + ': ' +
      (sw.total ? sw.done + ' of ' + sw.total : 'starting\u2026'));
    els.bar.style.width = (sw.total ? clamp01(sw.done / sw.total) * 100 : 0).toFixed(1) + '%';
  }
  const done = !!sw && sw.state === SWITCH.DONE && view.watched === sw.model;
  const failed = !!sw && sw.state === SWITCH.FAILED;
  setHidden(els.result, !(done || failed));
  els.result.classList.toggle('bad', failed);
  els.result.classList.toggle('good', done);
  if (done) {
    setText(els.result, 'Now using ' + shortName(sw.model) + ': every example was learned again with it.');
  } else if (failed) {
    setText(els.result, 'Switching to ' + shortName(sw.model) + ' failed: ' + (sw.error || 'no reason given') +
      '. The box goes on with ' + shortName(s.model) + '.');
  }
  return running;
}

/** Called with every status. */
export function renderModel(s) {
  if (!view.loading && keyFor(s) !== view.key) { load(s); }
  renderNow(s);
  const running = renderSwitch(s);
  if (view.models) { buildOptions(view.models); }
  const chosen = (view.models || []).find((m) => m.name === els.choice.value);
  const usable = !!chosen && chosen.present && !chosen.current;
  const pictures = looksAtPictures(s);  // the box refuses a model switch while it looks at hands (faces, ...)
  setHidden(els.pictures, pictures);
  els.choice.disabled = !state.unlocked || running || view.asking || !pictures;
  els.button.disabled = !state.unlocked || running || view.asking || !usable || !pictures;
}

async function switchModel() {
  const name = els.choice.value;
  if (!state.unlocked || !name) { return; }
  if (!window.confirm('Switch to ' + shortName(name) + '? Every example is learned again with the new model; ' +
    'the box keeps answering meanwhile.')) { return; }
  view.asking = true;
  renderModel(state.status);
  try {
    const result = await post('/api/model', { model: name });
    view.watched = name;
    if (result.status) { update({ status: result.status }); }
  } catch (error) {
    reportError(error);
  } finally {
    view.asking = false;
    if (state.status) { renderModel(state.status); }
  }
}

export function initModel() {
  els.button.addEventListener('click', switchModel);
  els.choice.addEventListener('change', () => {
    if (state.status) { renderModel(state.status); }
  });
}
