/* "Looks at": what the box looks at (the whole picture, a hand, a face or a body pose).  Each
 * keeps its own classes and examples, so a switch loses nothing; a switch the box refuses (a
 * model file to fetch, the config pins it) shows the box's own message. */
import { $, make, setText, capitalise } from './dom.js';
import { state, update } from './store.js';
import { request, post } from './api.js';
import { showBanner, reportError } from './banner.js';

const els = { now: $('looks-now'), choices: $('looks-choices') };
// the page's words for each source (a source it does not know is shown by its name)
const LABEL = { picture: 'Picture', hand: 'Hand', face: 'Face', pose: 'Body pose' };
const THINGS = { picture: 'pictures', hand: 'hands', face: 'faces', person: 'body poses' };
const view = {
  sources: null,  // the last GET /api/sources answer's list: [{name, thing, current}]
  key: '',        // the source it was loaded for
  loading: false,
  built: '',
  asking: false   // a switch request is on its way
};

const PICTURE = 'picture';  // the source of the whole frame (the model chooser's)

export const sourceLabel = (name) => LABEL[name] || capitalise(name || '');

/** The box looks at whole pictures (status `s`): the only source the embedding model is for. */
export const looksAtPictures = (s) => !s.source || s.source.name === PICTURE;

/** "hands" for a source whose thing is "hand": what the box looks at, said in a sentence. */
export function thingsOf(source) {
  const thing = (source || {}).thing;
  return THINGS[thing] || (thing ? thing + 's' : THINGS[PICTURE]);
}

async function load(s) {
  view.key = (s.source || {}).name || '';
  view.loading = true;
  try {
    view.sources = (await request('GET', '/api/sources')).sources || [];
  } catch (error) {
    view.key = '';
    if (error.status) { reportError(error); }  // no answer at all: the connection line says so
  } finally {
    view.loading = false;
  }
  if (state.status) { renderLooks(state.status); }
}

function build(sources) {
  const key = sources.map((source) => source.name).join('|');
  if (view.built === key) { return; }
  view.built = key;
  els.choices.replaceChildren(make('legend', { className: 'sr-only', textContent: 'What the box looks at' }),
    ...sources.map((source) => {
      const input = make('input', { type: 'radio', name: 'looks-at', value: source.name, className: 'look-input' });
      input.addEventListener('change', () => { if (input.checked) { switchTo(source.name); } });
      return make('label', { className: 'look-choice', attrs: { 'data-source': source.name } }, input,
        make('span', { className: 'look-text', textContent: sourceLabel(source.name) }));
    }));
}

/** Called with every status. */
export function renderLooks(s) {
  const current = s.source || { name: PICTURE, thing: PICTURE };
  if (!view.loading && current.name !== view.key) { load(s); }
  if (view.sources) { build(view.sources); }
  if (!view.asking) {
    for (const input of els.choices.querySelectorAll('.look-input')) {
      input.checked = input.value === current.name;
      input.closest('.look-choice').classList.toggle('current', input.checked);
    }
  }
  els.choices.disabled = !state.unlocked || view.asking;
  els.choices.setAttribute('aria-busy', String(view.asking));
  setText(els.now, looksAtPictures(s) ? 'The box looks at the whole picture.'
    : 'The box looks at ' + thingsOf(current) + ': only their shape counts, not the background.');
}

async function switchTo(name) {
  const s = state.status;
  if (!state.unlocked || !s || (s.source || {}).name === name) { return; }
  view.asking = true;
  renderLooks(s);
  try {
    const result = await post('/api/source', { source: name });
    if (result.status) { update({ status: result.status }); }
    const now = (result.status && result.status.source) || { name, thing: name };
    showBanner('Now looking at ' + thingsOf(now) + '. Each keeps its own classes: switch back and ' +
      'what was taught there comes back.', 'info');
  } catch (error) {
    reportError(error);  // the box's own words: what to fetch, or why not
  } finally {
    view.asking = false;
    if (state.status) { renderLooks(state.status); }
  }
}
