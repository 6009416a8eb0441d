/* Press-and-hold buttons: press() when a finger, the mouse or Space/Enter goes down,
 * release() when it lets go (or the page loses focus).  Used by the teach buttons and the
 * simulated panel. */
import { reportError } from './banner.js';

const holders = new Set();   // release functions of every holdable button

export function releaseAll() {
  for (const release of holders) { release(); }
}

const HOLD_KEYS = new Set([' ', 'Enter', 'Spacebar']);

/**
 * @param {HTMLButtonElement} button
 * @param {{press: () => Promise, release: () => Promise, enabled: () => boolean,
 *          keepAlive?: () => Promise, onChange?: (held: boolean) => void}} handlers
 */
export function holdable(button, handlers) {
  let pointerId = null;
  let keyDown = false;
  let down = false;
  let renewal = null;

  function press() {
    if (down || !handlers.enabled()) { return; }
    down = true;
    if (handlers.keepAlive) {  // the box stops a hold it stops hearing about
      renewal = setInterval(() => { handlers.keepAlive().catch(() => {}); }, 1000);
    }
    button.classList.add('held');
    button.setAttribute('aria-pressed', 'true');
    if (handlers.onChange) { handlers.onChange(true); }
    handlers.press().catch(reportError);
  }

  function release() {
    if (!down) { return; }
    down = false;
    clearInterval(renewal);
    renewal = null;
    pointerId = null;
    keyDown = false;
    button.classList.remove('held');
    button.setAttribute('aria-pressed', 'false');
    if (handlers.onChange) { handlers.onChange(false); }
    handlers.release().catch(reportError);
  }

  function end(event) {
    if (pointerId !== null && event.pointerId !== pointerId) { return; }
    if (pointerId === null && !down) { return; }
    if (keyDown) { return; }  // a keyboard press is released by its key
    release();
  }

  button.setAttribute('aria-pressed', 'false');
  button.addEventListener('pointerdown', (event) => {
    if (event.pointerType === 'mouse' && event.button !== 0) { return; }
    event.preventDefault();  // no text selection, no focus-scroll jumps
    if (down || !handlers.enabled()) { return; }
    pointerId = event.pointerId;
    try { button.setPointerCapture(event.pointerId); } catch (e) { /* not supported */ }
    button.focus({ preventScroll: true });
    press();
  });
  for (const type of ['pointerup', 'pointercancel', 'pointerleave', 'lostpointercapture']) {
    button.addEventListener(type, end);
  }
  for (const type of ['contextmenu', 'selectstart', 'dragstart', 'click']) {
    button.addEventListener(type, (event) => event.preventDefault());
  }
  button.addEventListener('keydown', (event) => {
    if (!HOLD_KEYS.has(event.key)) { return; }
    event.preventDefault();
    if (event.repeat || down) { return; }
    keyDown = true;
    press();
    if (!down) { keyDown = false; }
  });
  button.addEventListener('keyup', (event) => {
    if (!HOLD_KEYS.has(event.key)) { return; }
    event.preventDefault();
    if (keyDown) {
      keyDown = false;
      release();
    }
  });
  button.addEventListener('blur', () => { if (down && pointerId === null) { release(); } });
  holders.add(release);
  return { release, isDown: () => down };
}
