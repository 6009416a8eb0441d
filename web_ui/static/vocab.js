/* The server's vocabularies, defined once.  The template renders them into
 * <script id="vocab" type="application/json">; nothing else on the page spells these strings.
 * FALLBACK holds the same values for a server that does not render them yet. */

const FALLBACK = {
  camera_states: { ONLINE: 'online', OFFLINE: 'offline', STARTING: 'starting' },
  answer_states: { OK: 'ok', UNKNOWN: 'unknown', EMPTY: 'nothing-learned' },
  buttons: { FUNCTION: 'function' },
  pair_states: { PENDING: 'pending', APPROVED: 'approved', UNKNOWN: 'unknown', CANCELLED: 'cancelled' },
  led_patterns: {
    BOOT: 'boot', FAULT: 'fault', COUNTDOWN: 'countdown', PAIRING: 'pairing', FEEDBACK: 'feedback',
    TEACHING: 'teaching', ANSWER: 'answer', OFF: 'off'
  },
  // why the box kept a doubtful frame, and where a stored example came from (device/inbox.py,
  // device/library.py); the server does not render these two yet, so these values are used
  doubt_reasons: { CLOSE: 'close', UNKNOWN: 'unknown' },
  example_sources: { BUTTON: 'button', PHONE: 'phone', INBOX: 'inbox', IMPORT: 'import', MIGRATED: 'migrated' }
};

function fromPage() {
  const el = document.getElementById('vocab');
  if (!el) { return {}; }
  try {
    const data = JSON.parse(el.textContent || '{}');
    return data && typeof data === 'object' ? data : {};
  } catch (e) {
    return {};
  }
}

function merged() {
  const page = fromPage();
  const out = {};
  for (const [group, values] of Object.entries(FALLBACK)) {
    const given = page[group] && typeof page[group] === 'object' ? page[group] : {};
    out[group] = Object.freeze({ ...values, ...given });
  }
  return Object.freeze(out);
}

const VOCAB = merged();

export const CAMERA = VOCAB.camera_states;
export const ANSWER = VOCAB.answer_states;
export const BUTTON = VOCAB.buttons;
export const PAIR = VOCAB.pair_states;
export const LED = VOCAB.led_patterns;
export const REASON = VOCAB.doubt_reasons;
export const SOURCE = VOCAB.example_sources;
export default VOCAB;
