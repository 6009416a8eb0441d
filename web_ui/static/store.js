/* The page's one state object.  Modules read `state` and change it through `update`, which
 * tells every subscriber (the renderers) once per change.  Two parts are bookkeeping that is
 * mutated in place and shown at the next render: `net` (poll and frame in flight; poll() and
 * the frame loader hold on to the object) and `waits`. */

export const state = {
  status: null,        // the last /api/status answer
  csrf: '',            // the session's CSRF token (from the status)
  unlocked: false,     // this browser may teach and change the box
  failures: 0,         // status polls failed in a row
  lastError: null,     // why the last poll failed
  pairing: null,       // this page's pending pairing request: {code, since} or null
  latched: false,      // the simulated Function button is kept down by the "Keep Function down" toggle
  expectLocked: false, // a Lock was just sent: tell the user if the box stays unlocked
  waits: {             // refusals that said "try again in": when (Date.now() ms) and why
    pairUntil: 0, pairText: '', pinUntil: 0
  },
  net: {              // request bookkeeping: mutated in place (poll and frames keep a reference)
    polling: null,     // the running status request (a promise), if any
    pollAgain: false,  // poll once more when it returns
    frameLoading: false,
    quiet: 0           // requests that change the session are running: polls and frames wait
  }
};

const listeners = new Set();

export function subscribe(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function update(patch) {
  Object.assign(state, patch);
  for (const fn of listeners) {
    try {
      fn(state);
    } catch (e) {
      console.error(e);
    }
  }
}

/** Name of class `i` as the box last said. */
export function className(i) {
  const classes = state.status && state.status.classes;
  return classes && classes[i] ? classes[i].name : 'class ' + (i + 1);
}

/** Tiny event bus for things that are not state: 'resume' (polls/frames may run again). */
const handlers = {};
export function on(name, fn) { (handlers[name] = handlers[name] || []).push(fn); }
export function emit(name, ...args) { (handlers[name] || []).forEach((fn) => fn(...args)); }
