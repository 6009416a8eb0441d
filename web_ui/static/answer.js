/* The answer card: what the box sees, how sure it is, and the running teaching burst. */
import { $, setText, setHidden, pct, colourOf, isNumber } from './dom.js';
import { CAMERA, ANSWER } from './vocab.js';

const els = {
  card: $('answer-card'), answer: $('answer'), confidence: $('confidence'), hint: $('answer-hint'),
  teachingNow: $('teaching-now'), burst: $('burst'), samePicture: $('same-picture'),
  savingWarning: $('saving-warning')
};

// what the card says when the box looks for a hand (face, person) and finds none, by its thing
const ABSENT_WORDS = {
  hand: { text: 'No hand', hint: 'show a hand to the camera' },
  face: { text: 'No face', hint: 'look into the camera' },
  person: { text: 'No one', hint: 'step in front of the camera, whole body in view' }
};

/** What the card shows for status `s`: view (the page's own name for it, used by the CSS),
 * state (the box's word, when it is not the status's own), texts and accent. */
export function answerView(s) {
  const cam = s.camera || {};
  const name = (id) => (s.classes && s.classes[id] ? s.classes[id].name : s.answer);
  if (cam.state === CAMERA.OFFLINE) {
    return { view: 'no-camera', state: CAMERA.OFFLINE, text: 'Camera offline', hint: cam.error ? String(cam.error) : 'the box cannot see anything right now' };
  }
  if (cam.state === CAMERA.STARTING && !cam.frames) {
    return { view: 'camera-starting', state: CAMERA.STARTING, text: 'Camera starting\u2026' };
  }
  if (s.state === ANSWER.OK) {
    const sure = s.sure !== false;  // a box that does not say is sure of every answer it names
    const accent = isNumber(s.answer_id) ? colourOf(s.answer_id) : null;
    if (sure) {
      return { view: 'sure', text: name(s.answer_id), confidence: pct(s.confidence) + ' sure', accent };
    }
    return { view: 'unsure', text: 'Not sure \u2014 maybe ' + name(s.answer_id),
             confidence: 'only ' + pct(s.confidence) + ' sure', hint: 'teach it more', accent };
  }
  if (s.state === ANSWER.ABSENT) {  // a hand (face, body) source found none in the frame
    const thing = (s.source || {}).thing;
    const words = ABSENT_WORDS[thing] || { text: 'No ' + (thing || 'thing'), hint: 'show one to the camera' };
    return { view: ANSWER.ABSENT, text: words.text, hint: words.hint };
  }
  if (s.state === ANSWER.EMPTY) {
    return { view: 'empty', text: 'Nothing learned yet', hint: 'hold a class button to teach' };
  }
  return { view: ANSWER.UNKNOWN, text: 'Unknown', hint: 'not like anything it was taught' };
}

function renderCard(s) {
  const v = answerView(s);
  const state = v.state || String(s.state);  // the box's word, for tests and tools
  if (els.card.dataset.view !== v.view || els.card.dataset.state !== state) {
    els.card.dataset.view = v.view;
    els.card.dataset.state = state;
    els.answer.dataset.state = state;
  }
  if (v.accent) {
    els.card.style.setProperty('--accent', v.accent);
  } else {
    els.card.style.removeProperty('--accent');
  }
  setText(els.answer, v.text);
  setText(els.confidence, v.confidence || '');
  setHidden(els.confidence, !v.confidence);
  const teaching = isNumber(s.teaching);
  setText(els.hint, v.hint || '');
  setHidden(els.hint, !v.hint || teaching);  // while teaching the line below says more
}

/** "Teaching “Cup”…" and, when the box reports the burst, how many it took so far. */
function renderTeaching(s) {
  const c = isNumber(s.teaching) && s.classes ? s.classes[s.teaching] : null;
  setHidden(els.teachingNow, !c);
  if (c) { setText(els.teachingNow, 'Teaching \u201c' + c.name + '\u201d\u2026'); }
  const burst = s.burst && c ? s.burst : null;
  setHidden(els.burst, !burst);
  setHidden(els.samePicture, !(burst && burst.same_picture));
  els.card.classList.toggle('is-teaching', !!c);
  if (!burst) { return; }
  const taught = Number(burst.taught) || 0;
  const skipped = Number(burst.skipped) || 0;
  setText(els.burst, taught + ' taught' + (skipped ? ', ' + skipped + ' skipped' : ''));
}

function renderSaving(s) {
  const saving = s.saving || { ok: true };
  setHidden(els.savingWarning, !!saving.ok);
  if (!saving.ok) {
    setText(els.savingWarning, 'Not saved: ' + (saving.error || 'saving failed') +
      '. What it learns now may be lost when the box restarts.');
  }
}

export function renderAnswer(s) {
  renderCard(s);
  renderTeaching(s);
  renderSaving(s);
}
