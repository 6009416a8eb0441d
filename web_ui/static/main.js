/* teachbox phone page, entry point: polls /api/status into the store, renders every part of
 * the page from it, refreshes the live view and wires the controls.  ES modules, no build step,
 * no external resources.  The modules sit beside this file in static/, where the package data
 * "static/*" installs them (a subfolder would be left out of an installed box). */
import { $ } from './dom.js';
import { state, subscribe } from './store.js';
import { startPolling, poll } from './api.js';
import { initBanner } from './banner.js';
import { releaseAll } from './hold.js';
import { renderAnswer } from './answer.js';
import { renderLive, initLive, scheduleFrame } from './live.js';
import { renderClasses } from './classes.js';
import { renderActions, initActions } from './actions.js';
import { renderLock, initAuth } from './auth.js';
import { renderPanel } from './panel.js';
import { renderDetails } from './details.js';
import { renderLibrary, initLibrary } from './library.js';
import { renderModel, initModel } from './model.js';
import { renderLooks } from './looks.js';
import { renderLandmarks, initLandmarks } from './landmarks.js';
import { renderRules, initRules } from './rules.js';
import { renderEvents, initEvents } from './events.js';

const body = document.body;
const conn = $('conn');

function renderConnection() {
  const lost = state.failures >= 2 || (!state.status && state.failures > 0);
  body.classList.toggle('stale', lost);
  if (lost) {
    const error = state.lastError;
    conn.textContent = 'Lost contact with the box; retrying\u2026' + (error && error.status ? ' (' + error.message + ')' : '');
    conn.className = 'conn conn-bad';
  } else if (state.status) {
    if (state.status.name && document.title !== state.status.name + ' \u00b7 teachbox') {
      document.title = state.status.name + ' \u00b7 teachbox';
    }
    conn.textContent = state.status.simulated ? 'Simulated box' : 'Connected';
    conn.className = 'conn conn-ok';
  }
}

function render() {
  renderConnection();
  const s = state.status;
  if (!s) { return; }
  body.classList.remove('loading');
  body.classList.toggle('locked', !state.unlocked);
  body.classList.toggle('unlocked', state.unlocked);
  for (const part of [renderAnswer, renderLive, renderLandmarks, renderClasses, renderActions, renderLock,
    renderLibrary, renderLooks, renderModel, renderRules, renderEvents, renderPanel, renderDetails]) {
    try {
      part(s);
    } catch (e) {
      console.error(e);
    }
  }
}

function initPage() {
  window.addEventListener('blur', releaseAll);
  window.addEventListener('pagehide', releaseAll);
  document.addEventListener('visibilitychange', () => {
    if (document.hidden) {
      releaseAll();
    } else {
      poll(false);
      scheduleFrame(0);
    }
  });
}

subscribe(render);
initBanner();
initLive();
initLandmarks();
initActions();
initAuth();
initLibrary();
initModel();
initRules();
initEvents();
initPage();
startPolling();
