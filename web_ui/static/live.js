/* The live view (one frame after another, never two at once) and the camera-source picker. */
import { $, setText, setHidden } from './dom.js';
import { state, on } from './store.js';
import { post } from './api.js';
import { reportError } from './banner.js';
import { CAMERA } from './vocab.js';

const FRAME_MS = 250;         // refreshes (the next one only after the last loaded or failed)
const FRAME_RETRY_MS = 1000;  // after a failed frame

const els = {
  live: $('live'), overlay: $('live-overlay'), overlayTitle: $('live-overlay-title'),
  overlayText: $('live-overlay-text'), sourceRow: $('source-row'), source: $('source'),
  sourceLocked: $('source-locked')
};
const frames = { counter: 0, timer: null, started: 0 };

function loadFrame() {
  frames.timer = null;
  if (state.net.frameLoading || document.hidden) { return; }
  if (state.net.quiet) {
    scheduleFrame(FRAME_MS);
    return;
  }
  state.net.frameLoading = true;
  frames.started = Date.now();
  frames.counter += 1;
  els.live.src = '/api/frame.jpg?n=' + frames.counter;
}

export function scheduleFrame(delay) {
  if (frames.timer !== null || state.net.frameLoading) { return; }
  frames.timer = setTimeout(loadFrame, Math.max(0, delay));
}

function renderOverlay(cam) {
  const offline = cam.state === CAMERA.OFFLINE;
  const starting = cam.state === CAMERA.STARTING && !cam.frames;
  if (offline) {
    setText(els.overlayTitle, 'Camera offline');
    setText(els.overlayText, cam.error || '');
  } else if (starting) {
    setText(els.overlayTitle, 'Camera starting\u2026');
    setText(els.overlayText, '');
  }
  setHidden(els.overlay, !(offline || starting));
  els.overlay.classList.toggle('overlay-offline', offline);
}

function renderSources(cam) {
  const sources = cam.sources || [];
  setHidden(els.sourceRow, sources.length === 0);
  if (!sources.length) { return; }
  const key = sources.join('\u0000');
  if (els.source.dataset.key !== key) {
    els.source.replaceChildren(...sources.map((name) => new Option(name, name)));
    els.source.dataset.key = key;
  }
  const chosen = cam.source;
  if (document.activeElement !== els.source && !els.source.disabled && chosen != null && els.source.value !== chosen) {
    els.source.value = chosen;
  }
  // choosing the simulated camera's scene stands for a person at the box, like the panel
  const present = ((state.status && state.status.auth) || {}).presence !== false;
  if (!els.source.classList.contains('busy')) { els.source.disabled = !present; }
  setHidden(els.sourceLocked, present);
}

export function renderLive(s) {
  const cam = s.camera || {};
  renderOverlay(cam);
  renderSources(cam);
}

async function chooseSource() {
  els.source.disabled = true;
  els.source.classList.add('busy');
  try {
    await post('/api/sim/source', { source: els.source.value });
  } catch (error) {
    reportError(error);
  } finally {
    els.source.classList.remove('busy');
    els.source.disabled = false;
  }
}

export function initLive() {
  els.live.addEventListener('load', () => {
    state.net.frameLoading = false;
    els.live.classList.add('has-frame');
    scheduleFrame(FRAME_MS - (Date.now() - frames.started));
  });
  els.live.addEventListener('error', () => {
    state.net.frameLoading = false;
    // no frame for a moment (e.g. just after the box switched what it looks at): the dark box,
    // not a broken-image icon and its alt text, until the next frame loads
    els.live.classList.remove('has-frame');
    scheduleFrame(FRAME_RETRY_MS);
  });
  // keep the live view from being dragged or long-pressed into a save-image menu mid-teach
  els.live.addEventListener('dragstart', (event) => event.preventDefault());
  els.source.addEventListener('change', chooseSource);
  on('resume', () => scheduleFrame(0));
  scheduleFrame(0);
}
