/* Talking to the box: JSON requests with a timeout, the CSRF header (refreshed once when stale),
 * ordered queues for press/release, and the status poll that feeds the store. */
import { state, update, emit } from './store.js';

const POLL_MS = 300;            // status polls (skipped while one is still running)
const REQUEST_TIMEOUT_MS = 8000;
const CSRF_HEADER = 'X-Teachbox-CSRF';

/** An Error with the HTTP status (0: no answer) and the JSON body the box sent, if any. */
function failure(message, status, data = {}) {
  const error = new Error(message);
  error.status = status;
  error.data = data;
  return error;
}

async function readError(response) {
  let data = {};
  try {
    data = JSON.parse(await response.text()) || {};
  } catch (e) {
    data = {};
  }
  const message = data.error ? String(data.error)
    : 'The box answered ' + response.status + (response.statusText ? ' ' + response.statusText : '');
  return failure(message, response.status, data);
}

export async function request(method, url, body, contentType = 'application/json', timeout = REQUEST_TIMEOUT_MS) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeout);
  const headers = { Accept: 'application/json' };
  if (method !== 'GET') {
    headers[CSRF_HEADER] = state.csrf;
    headers['Content-Type'] = contentType;
  }
  let response;
  try {
    response = await fetch(url, {
      method, headers, body, credentials: 'same-origin', cache: 'no-store', signal: controller.signal
    });
  } catch (error) {
    throw failure(error && error.name === 'AbortError' ? 'The box did not answer in time.'
      : 'Cannot reach the box (' + (error && error.message || 'network error') + ').', 0);
  } finally {
    clearTimeout(timer);
  }
  if (!response.ok) { throw await readError(response); }
  try {
    return await response.json();
  } catch (e) {
    return {};
  }
}

/** POST JSON (or `raw` bytes); on a stale CSRF token fetch a fresh one and try once more.
 * `timeout` (ms): how long to wait for the answer (an upload of tens of MB takes a while). */
export async function post(url, data = {}, { raw, timeout = REQUEST_TIMEOUT_MS } = {}) {
  const body = raw !== undefined ? raw : JSON.stringify(data);
  const type = raw !== undefined ? 'application/octet-stream' : 'application/json';
  const send = () => request('POST', url, body, type, timeout);
  try {
    if (!state.csrf) { await poll(true); }
    try {
      return await send();
    } catch (error) {
      if (error.status === 403 && /csrf/i.test(error.message)) {
        await poll(true);
        return await send();
      }
      throw error;
    }
  } finally {
    pollSoon();
  }
}

/** Run promise-returning functions one after another (keeps press/release in order). */
export function makeQueue() {
  let tail = Promise.resolve();
  return (fn) => {
    const next = tail.then(fn, fn);
    tail = next.catch(() => {});
    return next;
  };
}

/* The session lives in a signed cookie.  A response that started before an unlock finished
 * could put back the old, locked cookie, so requests that change the session run alone:
 * polls and frames pause until they are done. */
export async function exclusive(fn) {
  state.net.quiet += 1;  // state.net is mutated in place: poll() and the frames hold on to it
  const started = Date.now();
  while ((state.net.polling || state.net.frameLoading) && Date.now() - started < 3000) {
    await new Promise((resolve) => setTimeout(resolve, 15));
  }
  try {
    return await fn();
  } finally {
    state.net.quiet -= 1;
    if (!state.net.quiet) {
      pollSoon();
      emit('resume');
    }
  }
}

// -- the status poll -----------------------------------------------------------------
export function poll(force = false) {
  const net = state.net;
  if (net.quiet && !force) { return Promise.resolve(state.status); }
  if (net.polling) {
    if (force) { net.pollAgain = true; }
    return net.polling;
  }
  net.polling = request('GET', '/api/status').then((data) => {
    net.polling = null;
    const auth = data.auth || {};
    update({ status: data, failures: 0, csrf: auth.csrf || state.csrf, unlocked: !!auth.unlocked });
    if (net.pollAgain) {
      net.pollAgain = false;
      setTimeout(() => poll(false), 0);
    }
    return data;
  }, (error) => {
    net.polling = null;
    update({ failures: state.failures + 1, lastError: error });
    return state.status;
  });
  return net.polling;
}

export function pollSoon() {
  if (state.net.polling) {
    state.net.pollAgain = true;
  } else {
    setTimeout(() => poll(false), 0);
  }
}

export function startPolling() {
  poll(false);
  setInterval(() => {
    if (!document.hidden) { poll(false); }  // skipped inside poll() while one is still running
  }, POLL_MS);
}
