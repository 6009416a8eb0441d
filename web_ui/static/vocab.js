/* The server's vocabularies (device/vocab.py), defined once: the template renders them into
 * <script id="vocab" type="application/json">, and nothing on the page spells these strings,
 * not even here.  A group the page lacks is logged and left empty, so its comparisons fail
 * where they can be seen instead of matching a stale copy. */

function fromPage() {
  const el = document.getElementById('vocab');
  try {
    const data = JSON.parse((el && el.textContent) || '{}');
    return data && typeof data === 'object' ? data : {};
  } catch (e) {
    return {};
  }
}

const PAGE = fromPage();

function group(name) {
  const given = PAGE[name];
  if (!given || typeof given !== 'object') {
    console.error('the page has no vocabulary ' + name + ' from the box');
    return Object.freeze({});
  }
  return Object.freeze({ ...given });
}

export const CAMERA = group('camera_states');
export const ANSWER = group('answer_states');
export const BUTTON = group('buttons');
export const PAIR = group('pair_states');
export const LED = group('led_patterns');
export const REASON = group('doubt_reasons');
export const SOURCE = group('example_sources');
export const SWITCH = group('switch_states');
export default Object.freeze({ camera_states: CAMERA, answer_states: ANSWER, buttons: BUTTON, pair_states: PAIR,
  led_patterns: LED, doubt_reasons: REASON, example_sources: SOURCE, switch_states: SWITCH });
